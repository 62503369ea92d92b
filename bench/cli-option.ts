/**
 * `option(name, fallback)` reads `--name=value` (or a bare `--name`, which is `'true'`) from the
 * benchmark's command line; the fallback when it is absent.
 */
export function option(name: string, fallback: string): string {
  const a = process.argv.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (a === undefined) return fallback;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true';
}
