/**
 * The network and volume events dockerd sends around a container's start and exit: `network
 * connect` and `volume mount` before `start`; `network disconnect` and `volume unmount` after
 * `die`. Event watchers (compose, testcontainers) follow volumes and networks through them.
 */
import type { NetworkRecord } from '../network/network-record.js';
import type { ContainerRecord } from './container-record.js';
import type { PublishInput } from './events.js';

type FindNetwork = (name: string) => NetworkRecord | undefined;

function networkEvents(record: ContainerRecord, find: FindNetwork, action: string): PublishInput[] {
  const events: PublishInput[] = [];
  for (const name of Object.keys(record.networks ?? {})) {
    const network = find(name);
    if (!network) continue;
    events.push({
      Type: 'network',
      Action: action,
      Actor: {
        ID: network.id,
        Attributes: { container: record.id, name: network.name, type: network.driver },
      },
    });
  }
  return events;
}

/** What dockerd publishes just before a container's `start` event. */
export function startEvents(record: ContainerRecord, find: FindNetwork): PublishInput[] {
  const volumes = Object.entries(record.volumes ?? {}).map(([destination, volume]): PublishInput => ({
    Type: 'volume',
    Action: 'mount',
    Actor: {
      ID: volume.name,
      Attributes: {
        container: record.id,
        destination,
        driver: 'local',
        propagation: '',
        'read/write': String(!volume.readOnly),
      },
    },
  }));
  return [...networkEvents(record, find, 'connect'), ...volumes];
}

/** What dockerd publishes just after a container's `die` event. */
export function exitEvents(record: ContainerRecord, find: FindNetwork): PublishInput[] {
  const volumes = Object.values(record.volumes ?? {}).map((volume): PublishInput => ({
    Type: 'volume',
    Action: 'unmount',
    Actor: { ID: volume.name, Attributes: { container: record.id, driver: 'local' } },
  }));
  return [...networkEvents(record, find, 'disconnect'), ...volumes];
}

/** A `volume create` or `destroy` event (local driver: the only one berth has). */
export function volumeEvent(action: 'create' | 'destroy', name: string): PublishInput {
  return { Type: 'volume', Action: action, Actor: { ID: name, Attributes: { driver: 'local' } } };
}
