// Are two BENCH_DUMP files the same spans, byte for byte, apart from what differs per run?
//   node test/bench-session/compare-dumps.mjs before.txt after.txt
// Trace and span ids and times are random or clock-bound, so they are masked; batching and the
// interim versions of prompt spans (sent before their end when a flush falls inside the prompt) depend
// on timing, so spans are compared as sets and interim prompt spans (agent, no output yet) are left out.
import fs from "node:fs";

function spans(file) {
	const out = new Set();
	for (const line of fs.readFileSync(file, "utf8").split("\n")) {
		if (!line) continue;
		for (const resource of JSON.parse(line).resourceSpans)
			for (const scope of resource.scopeSpans)
				for (const span of scope.spans) {
					const text = JSON.stringify(span)
						.replace(/[0-9a-f]{32}/g, "T")
						.replace(/[0-9a-f]{16}/g, "S")
						.replace(/\d{19}/g, "N")
						.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, "D")
						.replace(/\d{13}/g, "M");
					const interim = text.includes('"stringValue":"agent"') && !text.includes('"langfuse.observation.output"');
					if (!interim) out.add(text);
				}
	}
	return out;
}
const [a, b] = process.argv.slice(2).map(spans);
const onlyA = [...a].filter(text => !b.has(text));
const onlyB = [...b].filter(text => !a.has(text));
console.log(`${a.size} / ${b.size} distinct spans; only in the first: ${onlyA.length}; only in the second: ${onlyB.length}`);
for (const text of [...onlyA.slice(0, 3), ...onlyB.slice(0, 3)]) console.log(`  ${text.slice(0, 300)}`);
process.exit(onlyA.length || onlyB.length ? 1 : 0);
