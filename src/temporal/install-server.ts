/**
 * `npm run temporal:install-server`: installs the pinned Temporal server, its SQL tool and the Web
 * UI server that `image-sync temporal-server` runs (used by .ci/run and the README).
 */
import { ensureServerPart, SERVER_PARTS, type ServerPart } from './server-binary';

async function main(): Promise<void> {
  for (const part of Object.keys(SERVER_PARTS) as ServerPart[]) {
    const started = Date.now();
    const file = await ensureServerPart(part);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${file} (${SERVER_PARTS[part].module}@${SERVER_PARTS[part].version}, ${seconds}s)`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
