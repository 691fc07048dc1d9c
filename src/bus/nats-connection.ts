import { connect, type NatsConnection } from '@nats-io/transport-node';

export interface NatsSettings {
  url: string;
  name: string;
}

/**
 * The client's defaults give up after 10 reconnect attempts (~21 s of outage) and throw when the
 * server is not up yet; a node must ride out a NATS restart of any length instead.
 */
export async function connectNats(settings: NatsSettings): Promise<NatsConnection> {
  return connect({
    servers: settings.url.split(',').map((s) => s.trim()),
    name: settings.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
  });
}
