import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MAX_BODY_BYTES, readJson } from '../../internal/http/request/jsonBody.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { waitFor } from '../support/waitFor.ts';
import { countNotifications, useTestApi } from './helpers.ts';

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; id?: string; body?: string };
}

/**
 * Request bodies as the API reads them from the socket's request, sent a piece at a time over a
 * raw connection, which `fetch` does not let a test do.
 */
describe('request bodies over a real HTTP server', () => {
  const db = useTestDatabase();
  const api = useTestApi(db);
  let port: number;

  beforeAll(() => {
    port = Number(new URL(api.app.url).port);
  });

  /**
   * POSTs `chunks` one write each (chunked unless a content-length is given) and reads the answer;
   * stops writing once the server has answered. With `end: false` the body is never finished, so
   * only a server that answers before the end of the body answers at all.
   */
  function post(chunks: Iterable<string>, headers: Record<string, string> = {}, end = true): Promise<Answer> {
    return new Promise((resolve, reject) => {
      let answered = false;
      // A connection of its own (agent: false): after a refused body the server drains and closes
      // the connection, which a kept-alive pool would hand to the next request.
      const req = http.request(
        { host: '127.0.0.1', port, path: '/notifications', method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } },
        (res) => {
          answered = true;
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Answer['body'] }));
        },
      );
      req.on('error', (err) => (answered ? undefined : reject(err)));
      void (async () => {
        for (const chunk of chunks) {
          if (answered || req.destroyed) break;
          // Waits for the socket to take each chunk, so a server that stopped reading stops the loop.
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
          await new Promise((r) => setImmediate(r));
        }
        if (end && !answered && !req.destroyed) req.end();
      })();
    });
  }

  function* piecesOf(json: string, size: number): Generator<string> {
    for (let i = 0; i < json.length; i += size) yield json.slice(i, i + size);
  }

  it('stores a notification whose body arrives in several chunks', async () => {
    const json = JSON.stringify({ user_id: 'chunky', type: 'IN_APP', body: 'ü'.repeat(5000) });
    const before = await countNotifications(db.sql);
    const answer = await post(piecesOf(json, 999));
    expect(answer.status).toBe(201);
    expect(answer.body.body).toBe('ü'.repeat(5000));
    expect(await countNotifications(db.sql)).toBe(before + 1);
  });

  it('refuses malformed JSON with 400 and stores nothing', async () => {
    const before = await countNotifications(db.sql);
    const answer = await post(['{"user_id": "u", "type": '], {});
    expect(answer.status).toBe(400);
    expect(answer.body.error?.code).toBe('malformed_json');
    expect(await countNotifications(db.sql)).toBe(before);
  });

  it('refuses with 413 a body that declares more than 1 MB, before reading it', async () => {
    const before = await countNotifications(db.sql);
    const answer = await post(['{"user_id":"u"'], { 'content-length': String(MAX_BODY_BYTES + 1) });
    expect(answer.status).toBe(413);
    expect(answer.body.error?.code).toBe('payload_too_large');
    expect(await countNotifications(db.sql)).toBe(before);
  });

  it('refuses with 413 a chunked body once it passes 1 MB, without waiting for the rest of it', async () => {
    const before = await countNotifications(db.sql);
    function* overLimit(): Generator<string> {
      yield '{"user_id":"u","type":"IN_APP","body":"';
      for (let i = 0; i < 24; i++) yield 'x'.repeat(64 * 1024);
    }
    // 1.5 MB of a body that never ends: only an answer given once the limit is passed comes back.
    const answer = await post(overLimit(), {}, false);
    expect(answer.status).toBe(413);
    expect(answer.body.error?.code).toBe('payload_too_large');
    expect(await countNotifications(db.sql)).toBe(before);
  });

  it('gives up reading a body whose client went away while the request waited, instead of hanging', async () => {
    // A route that, like an API-key check, awaits before it reads the body; the client is gone by then.
    const outcomes: string[] = [];
    const app = new Hono();
    app.post('/slow', async (c) => {
      await new Promise((r) => setTimeout(r, 200));
      try {
        await readJson(c, z.object({}));
        outcomes.push('read');
      } catch (err) {
        outcomes.push(`refused: ${(err as Error).message}`);
      }
      return c.body(null, 204);
    });
    const slow = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    try {
      const socket = net.connect((slow.address() as AddressInfo).port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.write('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":');
      await new Promise((r) => setTimeout(r, 50));
      socket.destroy();
      await waitFor('the handler to give up', () => outcomes.length === 1, 3000);
      expect(outcomes[0]).toMatch(/^refused: /);
    } finally {
      await new Promise((resolve) => slow.close(resolve));
    }
  });
});

