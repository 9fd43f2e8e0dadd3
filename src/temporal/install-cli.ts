/** `npm run temporal:install`: installs the pinned Temporal CLI (used by .ci/run and the README). */
import { ensureTemporalCli, temporalCliVersion } from './cli-binary';

async function main(): Promise<void> {
  const started = Date.now();
  const location = await ensureTemporalCli();
  if (location.kind !== 'path') {
    console.error('No Temporal CLI found and Go is not installed: the SDK will download its dev server when needed.');
    return;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${location.path} (${location.source}, ${seconds}s): ${temporalCliVersion(location.path)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
