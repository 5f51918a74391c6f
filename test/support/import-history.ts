// A large history made from the import fixtures (test/fixtures/import/): omp and pi session files with fresh
// session ids, for the import's memory test (test/import.test.ts) and its benchmark row (test/bench.ts).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const DIR = resolve(import.meta.dir, "../fixtures/import");
const totals = JSON.parse(readFileSync(join(DIR, "totals.json"), "utf8"));

/**
 * Writes `count` sessions under `dir`: even ones are the pi fixture (2 prompts), odd ones the omp fixture
 * (2 prompts) with its subagent file (1 prompt). `padBytes` of text join the second prompt of each.
 * Returns the bytes written and what an import must find.
 */
export function generateHistory(dir: string, count: number, padBytes = 0): { bytes: number; sessions: number; traces: number } {
	const pad = padBytes ? ` ${"x".repeat(padBytes)}` : "";
	const [piSession] = totals.pi.sessions;
	const [ompChild, ompParent] = totals.omp.sessions;
	const texts = { pi: readFileSync(join(DIR, piSession.file), "utf8"), parent: readFileSync(join(DIR, ompParent.file), "utf8"), child: readFileSync(join(DIR, ompChild.file), "utf8") };
	let bytes = 0;
	const write = (file: string, text: string) => {
		mkdirSync(dirname(file), { recursive: true });
		const padded = text.replaceAll("Second prompt: just answer", `Second prompt: just answer${pad}`);
		writeFileSync(file, padded);
		bytes += padded.length;
	};
	for (let i = 0; i < count; i++) {
		const id = `01a228b1-0000-7000-8000-${String(i).padStart(12, "0")}`;
		if (i % 2 === 0) {
			write(join(dir, "pi", `s_${id}.jsonl`), texts.pi.replaceAll(piSession.sessionId, id));
			continue;
		}
		const stem = join(dir, "omp", `s_${id}`);
		write(`${stem}.jsonl`, texts.parent.replaceAll(ompParent.sessionId, id));
		const childId = `01a228b1-1111-7000-8000-${String(i).padStart(12, "0")}`;
		write(join(stem, "Child3.jsonl"), texts.child.replaceAll(ompChild.sessionId, childId).replaceAll(ompParent.sessionId, id));
	}
	const omp = Math.floor(count / 2);
	return { bytes, sessions: count + omp, traces: 2 * count + omp };
}
