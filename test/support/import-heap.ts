// Runs `runImport` on the given folder in its own process and prints, as one JSON line, the run's totals and
// the heap after a full GC: before the run, the highest seen between sessions, and after it. Used by
// test/import.test.ts (the receiver runs in the test's process, so its own memory stays out of the numbers).
//   bun test/support/import-heap.ts <folder>   (LANGFUSE_* from the environment)
import langfuse, { type Internals } from "../../langfuse.ts";

const { runImport, createRuntime } = (langfuse as unknown as { internals: Internals }).internals;
const heap = () => {
	Bun.gc(true);
	return process.memoryUsage().heapUsed;
};
const runtime = createRuntime(process.env, { exitHook: false, replaySpool: false });
const before = heap();
let peak = before;
let calls = 0;
let maxQueued = 0;
const totals = await runImport(runtime, {
	paths: [process.argv[2]!],
	progress: () => {
		maxQueued = Math.max(maxQueued, runtime.exporter?.status.queued ?? 0);
		if (calls++ % 5 === 0) peak = Math.max(peak, heap());
	},
});
const after = heap();
runtime.exporter?.stop();
console.log(JSON.stringify({ before, peak: Math.max(peak, after), after, maxQueued, totals: { ...totals, byHost: undefined } }));
