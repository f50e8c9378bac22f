import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import type { Sql } from '../../internal/platform/database.ts';
import { postNotification, statusReached, storedAttempts } from '../support/notifications.ts';
import { useTestScope, type RunningWorker } from '../support/testScope.ts';
import { browserTestsSkipped, launchChromium, openTestPage } from '../support/browser.ts';
import { waitFor } from '../support/waitFor.ts';
import type { WebhookReceiver } from '../support/webhookReceiver.ts';

const STATUSES = ['PENDING', 'PROCESSING', 'SENT', 'FAILED', 'SKIPPED'] as const;
/** The page refreshes every 5 s: what changes in PostgreSQL shows within two rounds. */
const SHOWN_WITHIN_MS = 12_000;
/** A user id that is markup: it must show as text, never run. */
const MARKUP_USER = '<img src=x onerror="document.body.dataset.injected=1">';


describe.skipIf(browserTestsSkipped('test/e2e/dashboard.test.ts'))('the operators dashboard in Chromium, against the real API (keys on) and worker', () => {
  const scope = useTestScope('file');
  let sql: Sql;
  let api: { url: string };
  let worker: RunningWorker;
  let receiver: WebhookReceiver;
  let browser: Browser;
  let adminKey: string;
  let producerKey: string;
  const sent: string[] = [];
  const failed: string[] = [];

  beforeAll(async () => {
    receiver = await scope.receiver(() => 400);
    ({ api, worker, db: { sql } } = await scope.services({ env: { AUTH_DISABLED: 'false' } }));
    adminKey = (await createApiKey(sql, 'dashboard-ops', ['admin'])).key;
    producerKey = (await createApiKey(sql, 'dashboard-producer', ['send', 'read'])).key;

    // The workload: in-app notifications that are delivered, webhooks the receiver refuses (a 400
    // fails at once, without retries), one of them for a user whose id is markup.
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      sent.push(await post({ user_id: user, type: 'IN_APP', title: 'Welcome', body: `Hello ${user}` }));
    }
    for (const user of ['erin', 'frank', MARKUP_USER]) {
      failed.push(await post({ user_id: user, type: 'WEBHOOK', body: 'order shipped', to: receiver.url }));
    }
    for (const id of sent) await statusReached(sql, id, 'SENT');
    for (const id of failed) await statusReached(sql, id, 'FAILED');

    browser = await launchChromium();
    scope.defer(() => browser.close());
  });

  async function post(body: Record<string, unknown>): Promise<string> {
    return (await postNotification(api.url, body, { authorization: `Bearer ${producerKey}` })).id;
  }

  /** The dashboard in a page of its own (`openTestPage`: closed after the test, errors collected). */
  async function openPage(): Promise<{ page: Page; errors: string[] }> {
    const opened = await openTestPage(browser, { width: 1280, height: 900 });
    await opened.page.goto(`${api.url}/admin/dashboard`);
    return opened;
  }

  async function enterKey(page: Page, key: string): Promise<void> {
    await page.fill('#key', key);
    await page.click('#login button');
  }

  /** Opens the dashboard with the admin key; resolves once a refresh has succeeded. */
  async function openDashboard(): Promise<{ page: Page; errors: string[] }> {
    const opened = await openPage();
    await enterKey(opened.page, adminKey);
    await opened.page.locator('#refresh[data-state="live"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    return opened;
  }

  const shownNumber = async (page: Page, selector: string) => Number((await page.textContent(selector))!.replaceAll(',', ''));
  const failureIds = (page: Page) => page.$$eval('#failures tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.id));

  async function countsInDatabase(): Promise<Record<string, number>> {
    const rows = await sql<{ status: string; n: number }[]>`select status, count(*)::int as n from notifications group by status`;
    return Object.fromEntries(STATUSES.map((s) => [s, rows.find((r) => r.status === s)?.n ?? 0]));
  }

  async function countsShown(page: Page): Promise<Record<string, number>> {
    const shown: Record<string, number> = {};
    for (const s of STATUSES) shown[s] = await shownNumber(page, `.tile[data-status="${s}"] .n`);
    return shown;
  }

  it('asks for a key, says clearly when one is refused, asks again, and keeps the key in the tab only', async () => {
    const { page, errors } = await openPage();
    expect(await page.isVisible('#login')).toBe(true);
    expect(await page.isVisible('#dashboard')).toBe(false);
    expect(await page.getAttribute('#key', 'type')).toBe('password');

    await enterKey(page, 'hk_not-a-key-anyone-was-given');
    await page.locator('#login-error:not([hidden])').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.textContent('#login-error')).toBe(
      'That key was refused: API key not recognised, or revoked. Enter a key with the admin scope.',
    );
    expect(await page.isVisible('#dashboard')).toBe(false);
    expect(await page.inputValue('#key')).toBe('');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    // A live key without the admin scope is refused too, saying why.
    await enterKey(page, producerKey);
    await page.locator('#login-error', { hasText: 'lacks the "admin" scope' }).waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.isVisible('#dashboard')).toBe(false);

    await enterKey(page, adminKey);
    await page.locator('#refresh[data-state="live"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.isVisible('#login')).toBe(false);
    expect(await page.isVisible('#dashboard')).toBe(true);
    expect(await page.evaluate(() => [sessionStorage.getItem('herald.adminKey'), localStorage.length])).toEqual([adminKey, 0]);
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe('/admin/dashboard');

    // A reload keeps the tab's key; "Forget key" drops it and asks again.
    await page.reload();
    await page.locator('#refresh[data-state="live"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    await page.click('#sign-out');
    expect(await page.isVisible('#login')).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(errors).toEqual([]);
  });

  it('shows the status counts, queue depths and throughput as PostgreSQL and Redis have them, and the failures with their reasons', async () => {
    const { page, errors } = await openDashboard();
    const expected = await countsInDatabase();
    expect(expected).toMatchObject({ SENT: sent.length, FAILED: failed.length });
    await waitFor('the page to show the counts PostgreSQL has', async () => JSON.stringify(await countsShown(page)) === JSON.stringify(expected), SHOWN_WITHIN_MS);
    expect(await shownNumber(page, '#dlq .n')).toBe(failed.length);
    expect(await shownNumber(page, '#queue .n')).toBe(0);

    // Everything was created, sent or failed within the chart's 15 minutes.
    expect(await page.locator('#chart g.minute').count()).toBe(15);
    expect(await shownNumber(page, '#sum-created')).toBe(sent.length + failed.length);
    expect(await shownNumber(page, '#sum-sent')).toBe(sent.length);
    expect(await shownNumber(page, '#sum-failed')).toBe(failed.length);
    expect(await page.locator('#chart rect.failed').count()).toBeGreaterThan(0);

    const reasons = await sql<{ id: string; error_reason: string }[]>`
      select id, error_reason from notifications where status = 'FAILED' order by updated_at desc, id desc`;
    expect(await failureIds(page)).toEqual(reasons.map((r) => r.id));
    for (const { id, error_reason } of reasons) {
      expect(error_reason).toContain('webhook answered 400');
      expect(await page.textContent(`#failures tr[data-id="${id}"] .reason`)).toBe(error_reason);
      expect(await page.textContent(`#failures tr[data-id="${id}"] .channel`)).toBe('WEBHOOK');
    }
    // Text from the API stays text.
    expect(await page.textContent(`#failures tr[data-id="${failed[2]}"] .user`)).toBe(MARKUP_USER);
    expect(await page.locator('#failures img').count()).toBe(0);
    expect(await page.evaluate(() => document.body.dataset.injected)).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it("draws a notification's timeline: created, each attempt with its worker, outcome and error, then sent or failed", async () => {
    const { page, errors } = await openDashboard();
    const id = failed[0]!;
    const attempts = await storedAttempts(sql, id);
    expect(attempts).toHaveLength(1);
    await page.click(`#failures tr[data-id="${id}"] button.open`);
    await page.locator('#timeline li[data-kind="failed"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.inputValue('#lookup-id')).toBe(id);
    expect(await page.$$eval('#timeline li', (lis) => lis.map((li) => (li as HTMLElement).dataset.kind))).toEqual(['created', 'attempt', 'failed']);
    const attempt = page.locator('#timeline li[data-kind="attempt"]');
    expect(await attempt.getAttribute('data-outcome')).toBe('FAILED');
    expect(await attempt.locator('.meta').textContent()).toContain(`worker ${worker.id}`);
    expect(await attempt.locator('.error').textContent()).toBe(attempts[0]!.error);
    expect(await page.textContent('#summary .status')).toBe('FAILED');

    // By id in the search box: a delivered one.
    await page.fill('#lookup-id', sent[0]!);
    await page.click('#lookup button');
    await page.locator('#timeline li[data-kind="sent"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.$$eval('#timeline li', (lis) => lis.map((li) => [(li as HTMLElement).dataset.kind, (li as HTMLElement).dataset.outcome ?? null]))).toEqual([
      ['created', null],
      ['attempt', 'SENT'],
      ['sent', null],
    ]);
    await page.fill('#lookup-id', '00000000-0000-4000-8000-000000000000');
    await page.click('#lookup button');
    await page.locator('#timeline-error', { hasText: 'No notification 00000000-0000-4000-8000-000000000000' }).waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.locator('#timeline li').count()).toBe(0);

    await page.click(`#failures tr[data-id="${failed[2]}"] button.open`);
    await page.locator('#timeline li[data-kind="failed"]').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.locator('#summary img').count()).toBe(0);

    const dir = await mkdtemp(path.join(os.tmpdir(), 'herald-dashboard-'));
    scope.defer(() => rm(dir, { recursive: true, force: true }));
    const screenshot = path.join(dir, 'dashboard.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    const png = await readFile(screenshot);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.length).toBeGreaterThan(20_000);
    expect(errors).toEqual([]);
  });

  it('replays one dead letter: PENDING again in PostgreSQL, gone from the failures, and the receiver sees a new attempt', async () => {
    const { page, errors } = await openDashboard();
    const id = failed[1]!;
    const before = receiver.forId(id).length;
    await page.click(`#failures tr[data-id="${id}"] button.open`);
    await page.locator('#timeline li[data-kind="failed"]').waitFor({ timeout: SHOWN_WITHIN_MS });

    // The worker is held still so the replayed row can be seen PENDING before it is attempted again.
    worker.process.signal('SIGSTOP');
    try {
      await page.click(`#failures tr[data-id="${id}"] button.replay`);
      await page.locator('#replay-result', { hasText: `Replayed ${id}` }).waitFor({ timeout: SHOWN_WITHIN_MS });
      await statusReached(sql, id, 'PENDING', SHOWN_WITHIN_MS);
      const [row] = await sql<{ retry_count: number }[]>`select retry_count from notifications where id = ${id}`;
      expect(row!.retry_count).toBe(0);
      await waitFor('the replayed one to leave the failures', async () => !(await failureIds(page)).includes(id), SHOWN_WITHIN_MS);
      expect(await page.locator('#timeline li[data-kind="pending"]').count()).toBe(1);
    } finally {
      worker.process.signal('SIGCONT');
    }

    await waitFor('the receiver to see a new attempt', () => receiver.forId(id).length === before + 1, SHOWN_WITHIN_MS);
    await statusReached(sql, id, 'FAILED');
    // The open timeline follows: both attempts, then failed again.
    await waitFor(
      'the timeline to show the second attempt',
      async () => (await page.locator('#timeline li[data-kind="attempt"]').count()) === 2 && (await page.isVisible('#timeline li[data-kind="failed"]')),
      SHOWN_WITHIN_MS,
    );
    const [replay] = await sql<{ requested_by: string; filter: unknown; dry_run: boolean }[]>`
      select requested_by, filter, dry_run from dead_letter_replays order by created_at desc limit 1`;
    expect(replay).toEqual({ requested_by: 'dashboard-ops', filter: { ids: [id] }, dry_run: false });
    expect(errors).toEqual([]);
  });

  it('replays every dead letter matching the filter only after a dry run has shown how many and the operator confirmed', async () => {
    const { page, errors } = await openDashboard();
    await waitFor('every failure to be back in the table', async () => (await failureIds(page)).length === failed.length, SHOWN_WITHIN_MS);
    await page.selectOption('#channel', 'WEBHOOK');
    await page.fill('#error-filter', 'answered 400');
    await page.click('#filters button:not([type])');
    await page.click('#replay-all');
    await page.locator('#replay-confirm:not([hidden])').waitFor({ timeout: SHOWN_WITHIN_MS });
    expect(await page.textContent('#replay-confirm-text')).toBe(
      `${failed.length} dead letters match channel WEBHOOK and error containing "answered 400". Replay them all?`,
    );
    // The dry run changed nothing, and was recorded as one.
    expect((await countsInDatabase()).FAILED).toBe(failed.length);
    const [dryRun] = await sql<{ filter: unknown; count: number; dry_run: boolean }[]>`
      select filter, count, dry_run from dead_letter_replays order by created_at desc limit 1`;
    expect(dryRun).toEqual({ filter: { all: true, channel: 'WEBHOOK', error: 'answered 400' }, count: failed.length, dry_run: true });

    const before = new Map(failed.map((id) => [id, receiver.forId(id).length]));
    worker.process.signal('SIGSTOP');
    try {
      await page.click('#replay-confirm-yes');
      await page.locator('#replay-result', { hasText: `Replayed ${failed.length} matching` }).waitFor({ timeout: SHOWN_WITHIN_MS });
      expect(await page.isVisible('#replay-confirm')).toBe(false);
      const statuses = await sql<{ status: string }[]>`select status from notifications where id = any(${failed}::uuid[])`;
      expect(statuses.map((s) => s.status)).toEqual(failed.map(() => 'PENDING'));
      expect((await countsInDatabase()).SENT).toBe(sent.length); // the delivered ones were not touched
    } finally {
      worker.process.signal('SIGCONT');
    }
    for (const id of failed) {
      await waitFor(`a new attempt of ${id} at the receiver`, () => receiver.forId(id).length === before.get(id)! + 1, SHOWN_WITHIN_MS);
      await statusReached(sql, id, 'FAILED');
    }
    expect(errors).toEqual([]);
  });
});
