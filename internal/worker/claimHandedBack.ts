/**
 * The reason a stopping worker aborts a delivery whose claim it has just handed back (PENDING
 * again, for another worker). The attempt then finds its claim gone, as after a takeover, but
 * nothing went wrong, so it says what happened instead of warning.
 */
export class ClaimHandedBack extends Error {
  constructor() {
    super('the worker is stopping and handed the claim back');
    this.name = 'ClaimHandedBack';
  }
}
