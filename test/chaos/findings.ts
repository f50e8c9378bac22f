/**
 * What the audit counts, in the order the report lists it. A category that `fails` fails the run
 * with one line of evidence per case; the others are counted and shown, as what faults are
 * allowed to cause.
 */
export const CATEGORIES = {
  lost: { fails: true, label: 'accepted but lost' },
  stuck: { fails: true, label: 'stuck (not SENT/FAILED/SKIPPED after quiescence)' },
  duplicateRows: { fails: true, label: 'stored twice (one request, more rows than it asked for)' },
  unexplainedDuplicate: { fails: true, label: 'delivered twice, no fault to explain it' },
  sentUndelivered: { fails: true, label: 'SENT but never delivered' },
  diedOnItsOwn: { fails: true, label: 'process exited without being told, or did not stop as told' },
  serverError: { fails: true, label: '5xx other than 503' },
  unexpectedRefusal: { fails: true, label: '4xx for a valid request (other than a racing 409)' },
  liveApiNoAnswer: { fails: true, label: 'no answer from a live, unfaulted API' },
  storedBehindRefusal: { fails: true, label: 'stored behind a refusal (not an in-doubt commit)' },
  inDoubtCommit: { fails: false, label: 'stored behind a 503 during a PostgreSQL cut (in-doubt commit)' },
  explainedDuplicate: { fails: false, label: 'delivered twice, after a fault (or its crash) hit the delivering worker' },
  timedOutDuplicate: { fails: false, label: 'delivered twice, the first attempt recorded failed by its worker' },
  noAnswerFromFaultedApi: { fails: false, label: 'no answer from an API being killed, stopped, restarted or crashing' },
} as const;

export type Category = keyof typeof CATEGORIES;

export interface Finding {
  category: Category;
  /** One line of evidence: ids, times, what happened. */
  line: string;
}

/** Collects findings; keeps every count but only the first lines of evidence per category. */
export class Findings {
  readonly counts = new Map<Category, number>();
  readonly evidence: Finding[] = [];
  private static readonly EVIDENCE_PER_CATEGORY = 10;

  add(category: Category, line: string): void {
    const n = (this.counts.get(category) ?? 0) + 1;
    this.counts.set(category, n);
    if (n <= Findings.EVIDENCE_PER_CATEGORY) this.evidence.push({ category, line });
  }

  count(category: Category): number {
    return this.counts.get(category) ?? 0;
  }

  /** The failing categories with a count above zero. */
  failures(): Category[] {
    return (Object.keys(CATEGORIES) as Category[]).filter((c) => CATEGORIES[c].fails && this.count(c) > 0);
  }
}
