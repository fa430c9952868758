import { loadConfigOrExit, onStopRequests } from '@clipline/shared';
import { loadSimSettings } from './sim-config.js';
import { createUpstreamSimulator } from './simulator.js';

const settings = loadConfigOrExit(process.env, loadSimSettings);
const simulator = await createUpstreamSimulator({
  port: settings.port,
  host: settings.host,
  seed: settings.seed,
  apiKey: settings.apiKey,
  ffmpegPath: settings.ffmpegPath,
  ...(settings.config ? { config: settings.config } : {}),
  ...(settings.mediaDir ? { mediaDir: settings.mediaDir } : {}),
});
process.stdout.write(`${JSON.stringify({ service: 'upstream-sim', msg: 'listening', url: simulator.url, port: simulator.port })}\n`);

onStopRequests(
  (reason) => {
    process.stdout.write(`${JSON.stringify({ service: 'upstream-sim', msg: 'stopping', reason })}\n`);
    simulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  },
  // A second signal does not wait for open connections.
  () => process.exit(1),
);
