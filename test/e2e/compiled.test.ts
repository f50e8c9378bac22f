import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { postNotification, statusReached } from '../support/notifications.ts';
import { runScript } from '../support/serviceProcess.ts';
import { serviceEnv, testQueueKeys } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/**
 * The image runs `dist/` (`npm run build`) with plain Node: these tests build it and run the
 * processes from it, so a file the compiled code cannot find at run time (migrations, the HTML
 * pages, package.json) fails here rather than in a container.
 */
describe('the compiled processes, as the Docker image runs them', () => {
  const scope = useTestScope();

  beforeAll(async () => {
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
  }, 180_000);

  it('migrate a new database, serve the API with its pages and document, deliver, and stop gracefully', async () => {
    const db = await scope.database({ empty: true });
    const migrated = await runScript('migrate', [], serviceEnv(db, testQueueKeys()), 45_000, { compiled: true });
    expect(migrated.code, migrated.stdout).toBe(0);
    expect(migrated.stdout).toMatch(/migrated .*: \d+ applied/);

    const { api, worker } = await scope.services({ db, compiled: true, env: { INBOX_JWT_SECRET: 'x'.repeat(32), INBOX_DEV_PAGE: 'true' } });
    const created = await postNotification(api.url, { user_id: 'compiled', type: 'IN_APP', title: 'Built', body: 'and run' });
    expect((await statusReached(db.sql, created.id, 'SENT')).status).toBe('SENT');

    const document = (await (await fetch(`${api.url}/openapi.json`)).json()) as { info: { version: string } };
    expect(document.info.version).toMatch(/^\d+\.\d+\.\d+/);
    for (const page of ['/admin/dashboard', '/dev/inbox', '/docs']) {
      const res = await fetch(`${api.url}${page}`);
      expect(res.status, page).toBe(200);
      expect(await res.text(), page).toContain('<html');
    }
    // The docs page's files: Swagger UI from the installed package, the starter from dist/.
    for (const file of ['swagger-ui.css', 'swagger-ui-bundle.js', 'docs.js']) {
      const res = await fetch(`${api.url}/docs/${file}`);
      expect(res.status, file).toBe(200);
      expect((await res.text()).length, file).toBeGreaterThan(0);
    }

    for (const p of [api.process, worker.process]) p.signal('SIGTERM');
    expect(await api.process.exitWithin(15_000)).toEqual({ code: 0, signal: null });
    expect(await worker.process.exitWithin(15_000)).toEqual({ code: 0, signal: null });
    expect(worker.process.logs.some((l) => l.msg === 'worker stopped')).toBe(true);
  });
});
