import type { Reporter, TestModule, Vitest } from 'vitest/node';

/**
 * A vitest reporter that fails the run when a test was skipped or left as a todo. A skip is a test
 * that silently did not check anything (a missing tool, a forgotten `.only`/`.skip`): the suite
 * must say so by failing, with the test's name, so that CI never passes on less than it claims.
 * A run narrowed on purpose (`vitest run -t NAME`, which skips what does not match) is left alone.
 */
export default class NoSkips implements Reporter {
  private narrowed = false;

  onInit(vitest: Vitest): void {
    this.narrowed = vitest.config.testNamePattern !== undefined;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (this.narrowed) return;
    const skipped: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'skipped' || state === 'pending') skipped.push(`${m.relativeModuleId} > ${t.fullName}`);
      }
    }
    if (skipped.length === 0) return;
    console.error(`\n${skipped.length} test(s) skipped; the suite does not pass with skips:\n  ${skipped.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}
