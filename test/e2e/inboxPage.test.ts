import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { Sql } from '../../internal/platform/database.ts';
import { postNotification, statusReached } from '../support/notifications.ts';
import { freePort } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';
import { browserTestsSkipped, expectRenderedScreenshot, launchChromium, openTestPage } from '../support/browser.ts';
import { waitFor } from '../support/waitFor.ts';

/** How soon a delivered notification must show on an open page. */
const LIVE_WITHIN_MS = 5000;


describe.skipIf(browserTestsSkipped('test/e2e/inboxPage.test.ts'))('the example inbox page in Chromium, against the real API and worker', () => {
  const scope = useTestScope('file');
  let sql: Sql;
  let env: Record<string, string>;
  let api: { url: string };
  let browser: Browser;

  beforeAll(async () => {
    const started = await scope.services({
      env: {
        LEASE_MS: '30000',
        INBOX_JWT_SECRET: randomBytes(32).toString('hex'),
        INBOX_DEV_PAGE: 'true',
        INBOX_CHANNEL: `${inject('runId')}:${randomBytes(4).toString('hex')}:inbox`,
      },
    });
    ({ env, api } = started);
    sql = started.db.sql;
    browser = await launchChromium();
    scope.defer(() => browser.close());
  });

  const openPage = () => openTestPage(browser, { width: 760, height: 560 });

  /** Opens the page on `apiUrl` and logs in as `userId`; resolves once its WebSocket has caught up. */
  async function logIn(page: Page, apiUrl: string, userId: string): Promise<void> {
    await page.goto(`${apiUrl}/dev/inbox`);
    await page.fill('#user', userId);
    await page.click('#login button');
    await page.locator('#status[data-state="live"]').waitFor({ timeout: LIVE_WITHIN_MS });
  }

  /** Creates an IN_APP notification through `apiUrl`; returns its id. */
  async function send(apiUrl: string, userId: string, title: string, body: string): Promise<string> {
    return (await postNotification(apiUrl, { user_id: userId, type: 'IN_APP', title, body })).id;
  }

  async function delivered(apiUrl: string, userId: string, title: string, body: string): Promise<string> {
    const id = await send(apiUrl, userId, title, body);
    await statusReached(sql, id, 'SENT');
    return id;
  }

  const shownIds = (page: Page) => page.$$eval('#items li', (lis) => lis.map((li) => li.dataset.id));
  const unreadShown = async (page: Page) => (await page.textContent('#unread'))?.trim();

  async function producerInbox(userId: string): Promise<{ notification_id: string; read_at: string | null }[]> {
    const res = await fetch(`${api.url}/users/${userId}/inbox`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: { notification_id: string; read_at: string | null }[] }).items;
  }

  it('lists the inbox with unread items marked, then shows a new notification live, once, and nothing of another user', async () => {
    const earlier = await delivered(api.url, 'alice', 'Welcome', 'Glad you are here');
    const { page, errors } = await openPage();
    await logIn(page, api.url, 'alice');
    expect(await shownIds(page)).toEqual([earlier]);
    expect(await page.getAttribute(`#items li[data-id="${earlier}"]`, 'class')).toContain('unread');
    expect(await unreadShown(page)).toBe('1');

    const bobs = await delivered(api.url, 'bob', 'For Bob', 'not for Alice');
    const posted = Date.now();
    const live = await send(api.url, 'alice', '<b>Order</b> shipped', '<img src=x onerror="document.body.dataset.injected=1"> on its way');
    await page.locator(`#items li[data-id="${live}"]`).waitFor({ timeout: LIVE_WITHIN_MS });
    expect(Date.now() - posted).toBeLessThan(LIVE_WITHIN_MS);

    expect(await shownIds(page)).toEqual([live, earlier]);
    expect(await page.textContent(`#items li[data-id="${live}"] .title`)).toBe('<b>Order</b> shipped');
    expect(await page.textContent(`#items li[data-id="${live}"] .body`)).toBe('<img src=x onerror="document.body.dataset.injected=1"> on its way');
    expect(await page.locator('#items img, #items b').count()).toBe(0);
    await waitFor('the unread count to reach 2', async () => (await unreadShown(page)) === '2', LIVE_WITHIN_MS);

    // Bob's was delivered before Alice's second one, so it would be on the page by now.
    await statusReached(sql, live, 'SENT');
    expect(await shownIds(page)).not.toContain(bobs);
    expect(await page.textContent('#items')).not.toContain('not for Alice');
    expect(await page.evaluate(() => document.body.dataset.injected)).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('marks one item read, then all, as the producer sees them, and counts down', async () => {
    const first = await delivered(api.url, 'dana', 'Invoice', 'Your invoice for November is ready');
    const second = await delivered(api.url, 'dana', 'Security', 'New sign-in from Firefox on Linux');
    const { page, errors } = await openPage();
    await logIn(page, api.url, 'dana');
    const third = await send(api.url, 'dana', 'Comment', 'Bob replied: "looks good to me"');
    await page.locator(`#items li[data-id="${third}"]`).waitFor({ timeout: LIVE_WITHIN_MS });
    await waitFor('the unread count to reach 3', async () => (await unreadShown(page)) === '3', LIVE_WITHIN_MS);

    await page.click(`#items li[data-id="${second}"] button.read`);
    await page.locator(`#items li[data-id="${second}"]:not(.unread)`).waitFor({ timeout: LIVE_WITHIN_MS });
    await waitFor('the unread count to reach 2', async () => (await unreadShown(page)) === '2', LIVE_WITHIN_MS);
    const afterOne = new Map((await producerInbox('dana')).map((i) => [i.notification_id, i.read_at]));
    expect(afterOne.get(second)).toEqual(expect.any(String));
    expect(afterOne.get(first)).toBeNull();
    expect(afterOne.get(third)).toBeNull();

    await expectRenderedScreenshot(page, 5000);

    await page.click('#read-all');
    await waitFor('the unread count to reach 0', async () => (await unreadShown(page)) === '0', LIVE_WITHIN_MS);
    expect(await page.locator('#items li.unread').count()).toBe(0);
    const afterReadAll = await producerInbox('dana');
    expect(afterReadAll.map((i) => i.notification_id).sort()).toEqual([first, second, third].sort());
    expect(afterReadAll.every((i) => i.read_at !== null)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('reconnects when its API restarts and resumes from its last seq: what was delivered meanwhile shows, nothing twice', async () => {
    // The page talks to an API of its own on a fixed port; notifications go through the shared one.
    const port = await freePort();
    const own = { ...env, PORT: String(port) };
    const first = await scope.api(own);
    const { page, errors } = await openPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await logIn(page, first.url, 'erin');
    const before = await send(api.url, 'erin', 'Before', 'sent while connected');
    await page.locator(`#items li[data-id="${before}"]`).waitFor({ timeout: LIVE_WITHIN_MS });
    const seq = await page.getAttribute(`#items li[data-id="${before}"]`, 'data-seq');
    await page.evaluate(() => (document.body.dataset.loaded = 'once'));

    await first.process.stopWithin();
    await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: LIVE_WITHIN_MS });
    const missed = await delivered(api.url, 'erin', 'Meanwhile', 'sent while the page was away');
    await scope.api(own);

    await page.locator(`#items li[data-id="${missed}"]`).waitFor({ timeout: 20_000 });
    await page.locator('#status[data-state="live"]').waitFor({ timeout: LIVE_WITHIN_MS });
    expect(await shownIds(page)).toEqual([missed, before]);
    expect(await unreadShown(page)).toBe('2');
    expect(await page.evaluate(() => document.body.dataset.loaded)).toBe('once');
    expect(new URL(sockets.at(-1)!).searchParams.get('since')).toBe(seq);
    expect(errors).toEqual([]);
  });
});
