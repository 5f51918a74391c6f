// `npm run check:langfuse` without the Langfuse source (CI): one line, exit 0, no host is run.
import { expect, test } from "bun:test";

const SCRIPT = new URL("./check-langfuse.ts", import.meta.url).pathname;

test("check:langfuse without LANGFUSE_SRC says it skipped and exits 0", () => {
	const env: Record<string, string> = { ...process.env } as Record<string, string>;
	delete env.LANGFUSE_SRC;
	const run = Bun.spawnSync([process.execPath, SCRIPT], { env, stdout: "pipe", stderr: "pipe" });
	expect(run.exitCode).toBe(0);
	expect(run.stderr.toString()).toBe("");
	const lines = run.stdout.toString().split("\n").filter(Boolean);
	expect(lines).toHaveLength(1);
	expect(lines[0]).toStartWith("check:langfuse skipped: set LANGFUSE_SRC=");
});

test("check:langfuse with a LANGFUSE_SRC that is not Langfuse's source exits 2 before running anything", () => {
	const run = Bun.spawnSync([process.execPath, SCRIPT, "--out", "/nonexistent-dir/never-created"], { env: { ...process.env, LANGFUSE_SRC: "/" }, stdout: "pipe", stderr: "pipe" });
	expect(run.exitCode).toBe(2);
	expect(run.stderr.toString()).toContain("LANGFUSE_SRC=/ lacks packages/shared/src/server/otel/OtelIngestionProcessor.ts");
});
