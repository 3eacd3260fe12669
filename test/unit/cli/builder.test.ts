import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FakeDockerApi } from '../../helpers/fake-docker-api.js';
import { compareWithDocker, haveDocker } from './harness.js';

/** berthd's answer: two records deleted (or none). */
function setup(deleted: string[]): (fake: FakeDockerApi) => void {
  return (fake) =>
    fake.route('POST', /^\/build\/prune$/, () => ({
      json: { CachesDeleted: deleted, SpaceReclaimed: deleted.length * 1234567 },
    }));
}

for (const [args, deleted, stdin] of [
  [['builder', 'prune', '-f'], ['abc', 'def'], undefined],
  [['builder', 'prune', '-a', '-f', '--filter', 'until=24h', '--keep-storage', '10MB'], ['abc'], undefined],
  [['builder', 'prune', '--force', '--filter', 'type=regular', '--filter', 'id=ab'], [], undefined],
  [['builder', 'prune'], ['abc'], 'y\n'],
  [['builder', 'prune', '-a'], ['abc'], 'n\n'],
] as Array<[string[], string[], string | undefined]>) {
  test(
    `berth ${args.join(' ')} sends and prints what docker does`,
    { skip: !haveDocker && 'the docker CLI is not installed' },
    async () => {
      const result = await compareWithDocker(setup(deleted), args, stdin === undefined ? {} : { stdin });
      assert.deepEqual(result.berthRequests, result.dockerRequests, 'requests');
      assert.equal(result.berth.stdout, result.docker.stdout, 'stdout');
      // docker's stderr also carries its legacy-builder deprecation notice.
      assert.equal(result.berth.code, result.docker.code, 'exit code');
    },
  );
}
