// Puts the sweep's test data on the local stack and leaves it there, so that `pnpm job:sweep`
// has something to report:  tsx jobs/secret-sweep/test/demo.ts up | down
import { createSweepFixture, dropSweepFixture } from './sweep-fixture.ts';

const PREFIX = 'sweep-demo';
const fixture = { nsA: `${PREFIX}-a`, nsB: `${PREFIX}-b`, nsC: `${PREFIX}-c`, kvBase: `sweep-test/${PREFIX}/` };
const command = process.argv[2];
if (command === 'up') {
  await createSweepFixture(PREFIX);
  process.stdout.write(`created namespaces ${fixture.nsA}, ${fixture.nsB}, ${fixture.nsC} and KV secret/${fixture.kvBase}; now run: pnpm job:sweep\n`);
} else if (command === 'down') {
  await dropSweepFixture(fixture);
  process.stdout.write('removed the demo data\n');
} else {
  process.stderr.write('usage: tsx jobs/secret-sweep/test/demo.ts up|down\n');
  process.exitCode = 2;
}
