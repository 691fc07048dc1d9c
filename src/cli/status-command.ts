import { connectNats } from '../bus/nats-connection.ts';
import type { NodeSnapshot } from '../runtime/snapshot.ts';
import { STATUS_SUBJECT } from '../system.ts';
import { natsSettings } from './settings.ts';

/** `prism status`: asks every running node for its figures (each node answers the same request). */
export async function runStatus(flags: {
  nats?: string;
  natsCreds?: string;
  json?: boolean;
  wait?: number;
}): Promise<number> {
  const nc = await connectNats({ ...natsSettings(flags), name: 'prism-status' });
  const snapshots: NodeSnapshot[] = [];
  try {
    const replies = await nc.requestMany(STATUS_SUBJECT, '', { maxWait: flags.wait ?? 1_000 });
    for await (const reply of replies) snapshots.push(reply.json<NodeSnapshot>());
  } catch (error) {
    if (!/no responders/i.test(String(error))) throw error;
  }
  await nc.close();
  if (flags.json) {
    console.log(JSON.stringify(snapshots, null, 2));
    return 0;
  }
  if (snapshots.length === 0) {
    console.log('no Prism node answered');
    return 1;
  }
  for (const s of snapshots.sort((a, b) => a.node.localeCompare(b.node))) console.log(formatSnapshot(s));
  return 0;
}

const mib = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MiB`;

export function formatSnapshot(s: NodeSnapshot): string {
  const lines = [
    `node ${s.node}  up ${s.uptimeSeconds}s`,
    `  jobs       received ${s.jobs.received}  done ${s.jobs.done}  dlq ${s.jobs.deadLettered}  retried ${s.jobs.retried}  spilled ${s.jobs.spilled}  held ${s.jobs.held}  settling ${s.jobs.settling ?? 0}`,
    `  throttles  alive ${s.throttles.alive}  passivated ${s.throttles.passivated}  parked ${s.throttles.parked}  paused keys ${s.throttles.pausedKeys}`,
    `  collectors busy ${s.collectors.busy}/${s.collectors.total}  waiting calls ${s.collectors.callsWaiting}  requests in flight ${s.collectors.inFlightRequests}  turn p99 ${s.collectors.turnMs?.p99 ?? '?'}ms`,
    `  calls      ${s.calls.total} (${s.calls.perSecond}/s)  failures ${s.calls.failures}  throttle signals ${s.calls.throttleSignals}  lapsed slots ${s.calls.lapsedSlots}  latency p50 ${s.calls.latencyMs.p50}ms p99 ${s.calls.latencyMs.p99}ms  send lag p99 ${s.calls.sendLagMs.p99}ms max ${s.calls.sendLagMs.maxEver}ms`,
    `  storage    ${s.storage.pages} pages  ${s.storage.bytes} bytes  retries ${s.storage.retries}   restarts ${s.restarts}   event loop delay p99 ${s.eventLoopDelayMs.p99}ms max ${s.eventLoopDelayMs.max}ms`,
  ];
  const bodies = s.collectors.bodies;
  if (bodies !== undefined)
    lines.push(
      `  bodies     held ${mib(bodies.heldBytes)} of ${mib(bodies.limitBytes)}  peak ${mib(bodies.peakBytes)}  waits ${bodies.waits}  waiting now ${bodies.waiting}`,
    );
  if (s.ledger !== undefined)
    lines.push(
      `  ledger     KV reads ${s.ledger.reads}  writes ${s.ledger.writes}  conflicts ${s.ledger.conflicts}`,
    );
  if (s.mostDelayed.length > 0) {
    lines.push('  most delayed keys:');
    for (const k of s.mostDelayed)
      lines.push(`    ${k.key}  parked ${k.parked}  waits ${k.waitsMs}ms  (${k.reason})`);
  }
  if (s.paused.length > 0) {
    lines.push('  paused keys:');
    for (const k of s.paused) lines.push(`    ${k.key}  until ${k.until}  parked ${k.parked}  (${k.reason})`);
  }
  return lines.join('\n');
}
