import { runUntilSignalled } from './bootstrap.js';
import { loadConfig } from './config/config.js';

await runUntilSignalled(
  () => loadConfig(),
  (server, config) => {
    process.stderr.write(
      `keystage: control plane listening on ${server.url} (roles: ${[...config.roles].join(', ')})\n`,
    );
  },
);
