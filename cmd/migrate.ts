import { connectDatabase, ensureDatabase } from '../internal/platform/database.ts';
import { migrate } from '../internal/platform/migrations.ts';
import { loadConfigOrExit } from '../internal/platform/processLifecycle.ts';

const config = loadConfigOrExit();
const target = new URL(config.DATABASE_URL);
const where = `${target.hostname}:${target.port || 5432}${target.pathname}`;
try {
  await ensureDatabase(config.DATABASE_URL);
  const sql = connectDatabase(config.DATABASE_URL, { max: 1 });
  try {
    const applied = await migrate(sql, (name) => console.log(`applied ${name}`));
    console.log(applied.length ? `migrated ${where}: ${applied.length} applied` : `${where} is up to date`);
  } finally {
    await sql.end({ timeout: 5 });
  }
} catch (err) {
  console.error(`migration of ${where} failed: ${err instanceof Error ? err.message : String(err)}`);
  console.error('check that PostgreSQL is running and that DATABASE_URL points at it');
  process.exit(1);
}
