/**
 * The workflow bundle: src/workflows packed by the SDK's bundler into one script for the
 * worker's sandbox. `npm run build` writes it next to the compiled code (dist/workflow-bundle.js),
 * so a worker started from the build loads it instead of bundling at every start; the tests
 * bundle once per run through the same function.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../codec/encryption';
import { errorText } from '../errors';

/** The file name of the prebuilt bundle, next to the compiled worker (dist/). */
export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';

/** The entry of the workflows: index.ts under tsx, index.js in the build. */
export function workflowsEntry(): string {
  return path.join(__dirname, '..', 'workflows', `index${path.extname(__filename)}`);
}

/** The prebuilt bundle's path for code running from `dir` (a compiled worker: dist/). */
export function prebuiltBundlePath(dir: string): string {
  return path.join(dir, WORKFLOW_BUNDLE_FILE);
}

/**
 * The modules the worker's sandbox evaluates once and shares between workflow runs, instead of
 * once per run: all of the workflows' own code. A run of a file workflow lasts one or two
 * workflow tasks, so evaluating the modules again for each was a visible share of the worker's
 * CPU per file. Sharing is safe because these modules hold no state of their own: only
 * constants, definitions (signals, queries, search attribute keys), activity proxies and
 * functions; a workflow's state lives in its function's scope. The sandbox freezes the shared
 * modules' exports; test/workflows/shared-modules.test.ts keeps module-level state (a `let`, a
 * Map) out of them, which freezing would not stop.
 */
export function preloadedWorkflowModules(workflowsPath = workflowsEntry()): string[] {
  return [workflowsPath];
}

const noop = () => undefined;
/** The bundler reports progress at info level; only its errors are worth showing. */
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };

/** Bundles the workflows and writes the bundle to outFile. */
export async function writeWorkflowBundle(outFile: string, workflowsPath = workflowsEntry()): Promise<string> {
  // The failure converter goes into the bundle: workflow failures are encoded in the sandbox.
  const bundle = await bundleWorkflowCode({
    workflowsPath,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    preloadModules: preloadedWorkflowModules(workflowsPath),
    logger: quietLogger,
  });
  await mkdir(path.dirname(outFile), { recursive: true });
  await writeFile(outFile, bundle.code);
  return outFile;
}

// `node dist/build/workflow-bundle.js`: the last step of `npm run build`.
if (require.main === module) {
  const out = prebuiltBundlePath(path.join(__dirname, '..'));
  writeWorkflowBundle(out).then(
    (file) => process.stdout.write(`workflow bundle written to ${path.relative(process.cwd(), file)}\n`),
    (err: unknown) => {
      process.stderr.write(`cannot bundle the workflows: ${errorText(err)}\n`);
      process.exitCode = 1;
    },
  );
}
