import { connectDatabase } from '../internal/platform/database.ts';
import { replayAndRecord, REPLAY_BATCH_SIZE } from '../internal/service/deadLetterReplays.ts';
import { listDeadLetters, purgeDeadLetters } from '../internal/service/deadLetters.ts';
import { loadConfigOrExit } from '../internal/platform/processLifecycle.ts';
import { failScript, parseScriptArguments } from '../internal/platform/scriptArguments.ts';
import { NotificationQueue } from '../internal/queue/notificationQueue.ts';
import { connectScriptRedis } from '../internal/platform/redis.ts';

const USAGE = `usage: npm run dlq -- <command> [--dry-run]
  list                 show the dead-letter list, oldest first
  replay --all         put every dead letter back to PENDING (retry_count 0) and queue it
  replay <id>...       the same for the given notification ids (any FAILED row, listed or not)
  purge                empty the dead-letter list; the rows stay FAILED
  --dry-run            say what would be done, change nothing`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Who replays from this script are recorded as in dead_letter_replays (the API records the key's name). */
const REQUESTED_BY = 'script';

function fail(message: string): never {
  return failScript(USAGE, message);
}

const { values, positionals } = parseScriptArguments(USAGE, { all: { type: 'boolean', default: false }, 'dry-run': { type: 'boolean', default: false } } as const);
const [command, ...ids] = positionals;
const dryRun = values['dry-run'];
const prefix = dryRun ? '[dry run] ' : '';

const config = loadConfigOrExit();
const sql = connectDatabase(config.DATABASE_URL, { max: 2 });
const redis = connectScriptRedis(config.REDIS_URL);
const queue = new NotificationQueue(redis, { queue: config.QUEUE_KEY, dlq: config.DLQ_KEY });

try {
  switch (command) {
    case 'list': {
      const letters = await listDeadLetters(sql, queue);
      for (const { id, notification: n } of letters) {
        console.log(n ? `${id}  ${n.type.padEnd(7)} ${n.status.padEnd(10)} retries=${n.retry_count}  ${n.updated_at.toISOString()}  ${n.error_reason ?? ''}` : `${id}  (no such notification)`);
      }
      console.log(`${letters.length} dead letter(s) in ${config.DLQ_KEY}`);
      break;
    }
    case 'replay': {
      if (values.all === ids.length > 0) fail('replay takes either --all or one or more ids');
      const bad = ids.filter((id) => !UUID.test(id));
      if (bad.length) fail(`not a notification id: ${bad.join(', ')}`);
      const selection = values.all ? { all: true as const, list: config.DLQ_KEY } : { ids };
      // The same replay as the API's (batches, then a dead_letter_replays row, even when cut short).
      const summary = await replayAndRecord({ sql, queue }, selection, {
        dryRun,
        requestedBy: REQUESTED_BY,
        onBatch: (result, { processed, total = processed }) => {
          for (const id of result.replayed) console.log(`${prefix}replayed ${id}`);
          for (const id of result.skipped) console.log(`${prefix}skipped ${id}: not FAILED`);
          if (total > REPLAY_BATCH_SIZE) console.log(`${prefix}${processed}/${total} processed`);
        },
      });
      console.log(`${prefix}${summary.replayed} of ${summary.replayed + summary.skipped} replayed`);
      break;
    }
    case 'purge': {
      if (ids.length) fail('purge takes no ids');
      const removed = await purgeDeadLetters(queue, dryRun);
      console.log(`${prefix}purged ${removed.length} dead letter(s) from ${config.DLQ_KEY}`);
      break;
    }
    default:
      fail(command ? `unknown command "${command}"` : 'no command given');
  }
} catch (err) {
  console.error(`dlq ${command} failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await sql.end({ timeout: 5 });
  redis.disconnect();
}
