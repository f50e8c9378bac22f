import { z } from 'zod';

/** Above this, a channel attempt could outlive its claim; see the `LEASE_MS` rule below. */
const LEASE_MARGIN_MS = 1000;

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const ms = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** Variables that configure a channel together. */
const PROVIDER_GROUPS = [
  ['SMTP_URL', 'EMAIL_FROM'],
  ['SMS_ACCOUNT_SID', 'SMS_AUTH_TOKEN', 'SMS_FROM'],
  ['VAPID_PUBLIC_KEY', 'VAPID_PRIVATE_KEY', 'VAPID_SUBJECT'],
] as const;

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The whole configuration, read once at start from the environment (and `.env`), then passed
 * down frozen. Nothing else in the code reads `process.env`.
 */
const baseSchema = z.object({
  /** PostgreSQL, the record of every notification. */
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/notifications'),
  /** Redis, which only says what to work on next. */
  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  QUEUE_KEY: z.string().min(1).default('notification_queue'),
  DLQ_KEY: z.string().min(1).default('notification_dlq'),
  /** Processing attempts before a notification is FAILED and dead-lettered. */
  MAX_RETRIES: z.coerce.number().int().min(1).max(100).default(3),
  RETRY_BASE_MS: ms(1000),
  RETRY_MAX_MS: ms(300_000),
  /** Notifications one worker process handles at once. */
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(10),
  /**
   * How long a claim holds without a renewal (a live worker renews every third of it), and how far the
   * queue must have passed a queued PENDING row still unclaimed before it is put back.
   */
  LEASE_MS: ms(30_000),
  /** How often the maintenance leader looks in PostgreSQL for due retries, lost queue entries and expired claims. */
  SWEEP_INTERVAL_MS: ms(1000),
  /** How long a stopping worker waits for its deliveries before it hands them back. */
  SHUTDOWN_GRACE_MS: ms(10_000),
  /** How long the API waits for PostgreSQL before it answers 503 (the write is then abandoned). */
  REQUEST_TIMEOUT_MS: ms(5000),
  WEBHOOK_TIMEOUT_MS: ms(10_000),
  WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must look like whsec_<base64>')
    .optional(),
  WEBHOOK_ALLOW_PRIVATE: boolean.default(false),
  /** One EMAIL, SMS or PUSH attempt's time limit. */
  PROVIDER_TIMEOUT_MS: ms(10_000),
  /** EMAIL: the SMTP server, e.g. smtps://user:password@smtp.example.com:465. */
  SMTP_URL: z.url().optional(),
  /** EMAIL: the From address, e.g. "Acme <no-reply@acme.example>". */
  EMAIL_FROM: z.string().min(3).optional(),
  /** SMS: base URL of a Twilio-compatible Messages API. */
  SMS_PROVIDER_URL: z.url().default('https://api.twilio.com'),
  SMS_ACCOUNT_SID: z.string().min(1).optional(),
  SMS_AUTH_TOKEN: z.string().min(1).optional(),
  /** SMS: the sender, a phone number in E.164 form or a messaging service id. */
  SMS_FROM: z.string().min(1).optional(),
  /** PUSH: the VAPID key pair (URL-safe base64, as `npx web-push generate-vapid-keys` prints). */
  VAPID_PUBLIC_KEY: z.string().min(1).optional(),
  VAPID_PRIVATE_KEY: z.string().min(1).optional(),
  /** PUSH: a mailto: or https: URL push services can contact about this sender. */
  VAPID_SUBJECT: z.string().regex(/^(mailto:|https:)/, 'must be a mailto: or https: URL').optional(),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  /** A worker's port for Prometheus' GET /metrics (0: any free port, logged). The API serves /metrics on PORT. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** Requests per second one API key may make (counted in Redis across API instances); 0 = no limit. */
  RATE_LIMIT_PER_SECOND: z.coerce.number().int().min(0).default(1000),
  /** Requests per second one client address may make on routes without an API key (/inbox, /dev); 0 = no limit. */
  RATE_LIMIT_IP_PER_SECOND: z.coerce.number().int().min(0).default(50),
  /**
   * Failed API key checks (a key unknown or revoked) one client address may make a minute; past
   * it, its requests with keys the API has not found live get 429 without a look in PostgreSQL.
   * 0 = no limit.
   */
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(0).default(30),
  /** Queue depth above which new notifications are refused with 503 and Retry-After; 0 = no bound. */
  MAX_QUEUE_DEPTH: z.coerce.number().int().min(0).default(1_000_000),
  /**
   * Days a finished notification (SENT, FAILED, SKIPPED) is kept, counted from when it finished;
   * the maintenance leader's retention job then deletes it with its attempts. 0 keeps every notification for ever.
   */
  RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  /** Lets every request in without an API key. For development only; never where others can reach. */
  AUTH_DISABLED: boolean.default(false),
  /** Prefix of the Redis Pub/Sub channels that carry new inbox items to API instances. */
  INBOX_CHANNEL: z.string().min(1).default('notification_inbox'),
  /** Secret (HS256) of the tokens end users present to read their inbox; unset, that API is off. */
  INBOX_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * Web origins (comma-separated, e.g. https://app.example.com) whose pages may call /inbox from
   * the browser (CORS); unset, only pages served from the API's own origin can.
   */
  INBOX_CORS_ORIGINS: z
    .string()
    .transform((text) => text.split(',').map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'each origin is scheme://host[:port], without a path')))
    .default([]),
  /** How often live inbox connections are checked; one silent for two intervals is closed. */
  INBOX_HEARTBEAT_MS: ms(30_000),
  /** Serves the example inbox page and its log-in-as-anyone endpoint. Development only. */
  INBOX_DEV_PAGE: boolean.default(false),
});

const configSchema = baseSchema
  .refine((c) => c.RETRY_MAX_MS >= c.RETRY_BASE_MS, {
    path: ['RETRY_MAX_MS'],
    message: 'must not be below RETRY_BASE_MS',
  })
  // A claim must outlive the longest delivery attempt, or a second worker could take the
  // notification over while the first is still sending it.
  .refine((c) => c.LEASE_MS >= longestAttemptMs(c) + LEASE_MARGIN_MS, {
    path: ['LEASE_MS'],
    message: `must exceed WEBHOOK_TIMEOUT_MS (and PROVIDER_TIMEOUT_MS while EMAIL, SMS or PUSH is configured) by at least ${LEASE_MARGIN_MS} ms`,
  })
  .refine((c) => !c.INBOX_DEV_PAGE || c.INBOX_JWT_SECRET !== undefined, {
    path: ['INBOX_DEV_PAGE'],
    message: 'needs INBOX_JWT_SECRET: the example page logs in with tokens signed by it',
  })
  // A channel is configured by all of its variables or none: half a configuration is a mistake
  // worth stopping for, not a channel that silently stays off.
  .superRefine((c, ctx) => {
    for (const group of PROVIDER_GROUPS) {
      const set = group.filter((name) => c[name] !== undefined);
      if (set.length === 0 || set.length === group.length) continue;
      const missing = group.find((name) => c[name] === undefined)!;
      ctx.addIssue({ code: 'custom', path: [missing], message: `must be set with ${set.join(', ')}` });
    }
  });

export type Config = Readonly<z.infer<typeof configSchema>>;

/** The longest one delivery attempt may take on the channels this configuration turns on. */
function longestAttemptMs(c: z.infer<typeof baseSchema>): number {
  const providers = c.SMTP_URL !== undefined || c.SMS_ACCOUNT_SID !== undefined || c.VAPID_PUBLIC_KEY !== undefined;
  return Math.max(c.WEBHOOK_TIMEOUT_MS, providers ? c.PROVIDER_TIMEOUT_MS : 0);
}

/** A configuration that cannot start the process; its message names the variable to fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment; an empty string counts as unset so `.env` templates can leave values blank. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = configSchema.safeParse(present);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const variable = issue.path.join('.') || 'environment';
    const value = present[variable];
    const shown = value === undefined || /SECRET|URL|TOKEN|PRIVATE_KEY/.test(variable) ? '' : ` (got "${value}")`;
    throw new ConfigError(`invalid ${variable}${shown}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}
