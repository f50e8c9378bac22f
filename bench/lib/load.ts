import http from 'node:http';
import autocannon from 'autocannon';
import { percentile, Samples } from './stats.ts';

export interface LoadOptions {
  url: string;
  connections: number;
  seconds: number;
  /** Requests per second across all connections; unset means as fast as the server answers. */
  rate?: number;
  /** Request bodies, sent in turn. */
  bodies: string[];
  /** Called once a second with the 2xx answers of that second. */
  onSecond?: (second: number, ok: number) => void;
}

export interface LoadResult {
  seconds: number;
  /** 2xx answers. */
  ok: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  /** 2xx answers per second over the whole run. */
  rps: number;
  /** Latency of 2xx answers in ms, measured here (not corrected for coordinated omission). */
  p50: number;
  p99: number;
  max: number;
  /** 2xx answers in each second of the run. */
  perSecond: number[];
}

/** `POST`s JSON bodies to `url` with autocannon for `seconds`, recording every 2xx latency. */
export async function postLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies = new Samples();
  const perSecond: number[] = [];
  let started = 0;
  let next = 0;
  const { bodies } = options;

  const instance = autocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.seconds,
      timeout: 10,
      ...(options.rate ? { overallRate: options.rate } : {}),
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => {
            request.body = bodies[next++ % bodies.length];
            return request;
          },
        },
      ],
    },
    () => {},
  );
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance.once('done', resolve);
    instance.once('error', reject);
  });
  instance.on('start', () => {
    started = performance.now();
  });
  let reported = 0;
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode < 200 || statusCode >= 300) return;
    latencies.push(responseTime);
    const second = Math.floor((performance.now() - started) / 1000);
    while (perSecond.length <= second) perSecond.push(0);
    perSecond[second]!++;
    while (options.onSecond && reported < second) {
      options.onSecond(reported, perSecond[reported]!);
      reported++;
    }
  });
  const result = await done;
  const seconds = result.duration;
  const sorted = latencies.sorted();
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = Number(count);
  // The last, partial second (the run's tail) says nothing about the rate.
  const whole = perSecond.slice(0, Math.floor(seconds));
  return {
    seconds,
    ok: latencies.length,
    non2xx: result.non2xx,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    rps: latencies.length / seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    perSecond: whole,
  };
}

/** IN_APP notifications for 1,000 users, as a product backend would send them. */
export function inAppBodies(count = 1000): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      user_id: `user-${i}`,
      type: 'IN_APP',
      title: 'Your report is ready',
      body: `Report ${i} finished processing and is ready to download.`,
      data: { report: i },
    }),
  );
}

export interface PacedOptions {
  url: string;
  /** Requests per second, sent evenly spaced whatever the answers' times (an open loop). */
  rate: number;
  seconds: number;
  bodies: string[];
  /** Keep-alive connections at most; requests beyond wait for one, and that wait counts in their latency. */
  maxConnections: number;
}

export interface PacedResult {
  sent: number;
  ok: number;
  failed: number;
  statusCodes: Record<string, number>;
  /** Seconds from the first request sent to the last one sent, and to the last answer. */
  sendSeconds: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Offers a fixed rate as a steady stream (one request every 1/rate s, not a burst at the top of
 * each second), and waits for every answer, so each request is counted.
 */
export async function pacedLoad(options: PacedOptions): Promise<PacedResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxConnections });
  const latencies = new Samples();
  const statusCodes: Record<string, number> = {};
  const total = Math.round(options.rate * options.seconds);
  const bodies = options.bodies.map((b) => Buffer.from(b));
  let sent = 0;
  let lastSentAt = 0;
  let finished = 0;
  let failed = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (allDone = resolve));
  const settle = () => {
    if (++finished === total) allDone();
  };
  const fire = (i: number) => {
    const body = bodies[i % bodies.length]!;
    const start = performance.now();
    const req = http.request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          statusCodes[code] = (statusCodes[code] ?? 0) + 1;
          if (code >= 200 && code < 300) latencies.push(performance.now() - start);
          else failed++;
          settle();
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', () => {
      failed++;
      settle();
    });
    req.end(body);
  };
  const t0 = performance.now();
  const timer = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * options.rate) + 1);
    while (sent < due) fire(sent++);
    if (sent >= total && lastSentAt === 0) {
      lastSentAt = performance.now();
      clearInterval(timer);
    }
  }, 1);
  if (total > 0) await done;
  clearInterval(timer);
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const sorted = latencies.sorted();
  return {
    sent,
    ok: latencies.length,
    failed,
    statusCodes,
    sendSeconds: (lastSentAt - t0) / 1000,
    seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
  };
}
