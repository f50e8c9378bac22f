import type { FanoutView } from '../fanoutService.ts';

/** A fan-out as the API shows it: what it sends, how far it got, where its notifications are. */
export function fanoutJson({ fanout, counts }: FanoutView) {
  return {
    fanout_id: fanout.id,
    topic: fanout.topic,
    type: fanout.type,
    status: fanout.status,
    created_count: fanout.created_count,
    counts,
    created_at: fanout.created_at.toISOString(),
    finished_at: fanout.finished_at?.toISOString() ?? null,
  };
}
