/**
 * One process of the drain baseline: a BullMQ worker whose jobs do nothing, started paused and run
 * on the benchmark's word, so process start-up is not timed. Talks to the benchmark over IPC.
 *
 * Environment: REDIS_URL, BULL_PREFIX, QUEUE_NAME, CONCURRENCY.
 */
import { Worker } from 'bullmq';
import { z } from 'zod';

const env = z
  .object({
    REDIS_URL: z.string().min(1),
    BULL_PREFIX: z.string().min(1),
    QUEUE_NAME: z.string().min(1),
    CONCURRENCY: z.coerce.number().int().positive(),
  })
  .parse(process.env);

const send = (message: object) => process.send?.(message);

const worker = new Worker(env.QUEUE_NAME, async () => {}, {
  connection: { url: env.REDIS_URL, maxRetriesPerRequest: null },
  prefix: env.BULL_PREFIX,
  concurrency: env.CONCURRENCY,
  autorun: false,
});

let completed = 0;
let lastCompletedAt = 0;
worker.on('completed', () => {
  completed++;
  lastCompletedAt = Date.now();
});
worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err.message}\n`));

process.on('message', (message: { type?: string }) => {
  if (message.type === 'run') {
    worker.run().catch((err: unknown) => process.stderr.write(`bullmq worker stopped: ${String(err)}\n`));
  } else if (message.type === 'report') {
    send({ type: 'report', completed, lastCompletedAt });
  }
});

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  void worker.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Without the benchmark on the other end of the channel there is nothing left to do.
process.on('disconnect', stop);

await worker.waitUntilReady();
send({ type: 'ready' });
