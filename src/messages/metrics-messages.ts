/** What the metrics actor receives: a tick of its interval. */
export type MetricsMessage = { type: 'tick' };
