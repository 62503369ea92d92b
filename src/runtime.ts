/**
 * The Node lines nxenstored runs on: 22 and 24 (the LTS lines), tested in CI; 20 too, past its end
 * of life (April 2026) but still the Node of some hosts, so it starts with a warning and CI runs
 * the suite on it as well. Older lines lack what the code uses (`import.meta.dirname`, the stable
 * `util.parseArgs`), so they are refused here with a message instead of a stack trace later.
 *
 * Imported first by the executables: ES modules evaluate their imports in order, so this check runs
 * before anything else is evaluated.
 */
const major = Number(process.versions.node.split('.')[0]);

if (major < 20) {
  process.stderr.write(`nxenstored: Node ${process.version} is not supported: run Node 22 or 24 (LTS)\n`);
  process.exit(1);
}

/** A line for the log when this Node is past its end of life, else undefined. */
export const runtimeWarning: string | undefined =
  major === 20 ? `Node ${process.version} is past its end of life (April 2026); nxenstored is supported on Node 22 and 24` : undefined;
