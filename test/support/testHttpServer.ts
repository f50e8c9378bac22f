import http from 'node:http';
import type https from 'node:https';

/** An HTTP server on 127.0.0.1 and a free port, once it listens; `handle` answers its requests. */
export async function listenLocally(handle: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * Ends the answers left hanging and every connection, then closes the server: a test server
 * must close at once, whatever a client or a test left open.
 */
export async function closeNow(server: http.Server | https.Server, hanging: Iterable<http.ServerResponse> = []): Promise<void> {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Calls `then` with the whole request body once it has arrived. */
export function onBody(req: http.IncomingMessage, then: (body: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => then(Buffer.concat(chunks).toString()));
}

/** Notes on `request` when the client hung up before it had an answer, and forgets `res` as hanging. */
export function watchAbandon(res: http.ServerResponse, request: { abandonedAt?: number }, hanging: Set<http.ServerResponse>): void {
  res.on('close', () => {
    hanging.delete(res);
    if (!res.writableEnded) request.abandonedAt = Date.now();
  });
}
