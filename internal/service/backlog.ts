import type { NotificationQueue } from '../queue/notificationQueue.ts';

export interface BacklogDeps {
  queue: Pick<NotificationQueue, 'depth'>;
}

/** How many notification ids wait in the queue for a worker: the backlog new creates are held to. */
export async function readBacklog(deps: BacklogDeps): Promise<number> {
  return deps.queue.depth();
}
