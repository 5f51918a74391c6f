// The command line: `bun langfuse.ts doctor | flush | codex-config | claude-config | help`, run as subprocesses against
// the local receiver. LANGFUSE_TS picks the file under test (default: ../langfuse.ts).
import { describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Receiver } from "./support/receiver.ts";
import { useReceiver, useTempDir } from "./support/rig.ts";

const LF = process.env.LANGFUSE_TS ?? new URL("../langfuse.ts", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const BUN = process.execPath;
const PK = "pk-lf-cli-test-public";
const SK = "sk-lf-cli-test-SECRET-0123456789";

let receiver: Receiver;
let root: string;
let spoolDir: string;

useReceiver(started => (receiver = started), { publicKey: PK, secretKey: SK, resetEachTest: true });
useTempDir("lf-cli-", dir => {
	root = dir;
	spoolDir = join(dir, "spool");
});

interface CliResult {
	code: number | null;
	stdout: string;
	stderr: string;
	ms: number;
}

async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
	const full: Record<string, string> = {
		PATH: process.env.PATH ?? "/usr/bin:/bin",
		HOME: root,
		CODEX_HOME: join(root, "codex"),
		LANGFUSE_PUBLIC_KEY: PK,
		LANGFUSE_SECRET_KEY: SK,
		LANGFUSE_HOST: receiver.url,
		LANGFUSE_SPOOL_DIR: spoolDir,
	};
	for (const [key, value] of Object.entries(env)) {
		if (value === undefined) delete full[key];
		else full[key] = value;
	}
	const started = performance.now();
	const child = Bun.spawn([BUN, LF, ...args], { env: full, cwd: root, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
	const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
	return { code: await child.exited, stdout, stderr, ms: performance.now() - started };
}

const failLines = (stdout: string) => stdout.split("\n").filter(line => line.startsWith("✗"));
const lineOf = (stdout: string, label: string) => stdout.split("\n").find(line => new RegExp(`^. ${label}\\b`).test(line));

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
	const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
	const port = server.port as number;
	await server.stop(true);
	return port;
}

describe("doctor", () => {
	test("healthy: every check passes, a test trace is confirmed, exit 0", async () => {
		const result = await cli(["doctor"]);
		expect(result.code).toBe(0);
		expect(failLines(result.stdout)).toEqual([]);
		expect(lineOf(result.stdout, "config")).toContain("pk-lf-cl…blic");
		expect(lineOf(result.stdout, "host")).toMatch(/^✓ host +reachable, Langfuse 3\.x-test/);
		expect(lineOf(result.stdout, "keys")).toMatch(/^✓ keys +valid for project test \(proj-test\)/);
		expect(lineOf(result.stdout, "transport")).toMatch(/^✓ transport +OTLP/);
		expect(lineOf(result.stdout, "spool")).toMatch(/^✓ spool .*empty/);
		expect(lineOf(result.stdout, "test")).toMatch(/^✓ test +test trace sent and confirmed: .*\/project\/proj-test\/traces\/[0-9a-f]{32}/);
		expect(lineOf(result.stdout, "result")).toMatch(/^✓ result +ready/);
		const traceId = lineOf(result.stdout, "test")!.match(/traces\/([0-9a-f]{32})/)![1];
		expect(receiver.spans.some(span => span.traceId === traceId)).toBe(true);
		expect(result.stdout + result.stderr).not.toContain(SK);
		// the empty transport probe is the only other POST
		expect(receiver.requests.filter(request => request.method === "POST")).toHaveLength(2);
	});

	test("wrong key: one line says so (HTTP 401), nothing is sent, exit 1", async () => {
		const result = await cli(["doctor"], { LANGFUSE_SECRET_KEY: "sk-lf-not-the-right-one" });
		expect(result.code).toBe(1);
		expect(failLines(result.stdout)).toHaveLength(1);
		expect(lineOf(result.stdout, "keys")).toMatch(/^✗ keys +wrong key: .* HTTP 401 .*LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY/);
		expect(lineOf(result.stdout, "host")).toMatch(/^✓/);
		expect(lineOf(result.stdout, "test")).toBeUndefined();
		expect(receiver.requests.filter(request => request.method === "POST")).toHaveLength(0);
		expect(result.stdout).not.toContain("sk-lf-not-the-right-one");
	});

	test("unreachable host: one line says so, with the fix, exit 1", async () => {
		const host = `http://127.0.0.1:${await closedPort()}`;
		const result = await cli(["doctor"], { LANGFUSE_HOST: host });
		expect(result.code).toBe(1);
		expect(failLines(result.stdout)).toHaveLength(1);
		expect(lineOf(result.stdout, "host")).toMatch(new RegExp(`^✗ host +unreachable: ${host.replace(/\./g, "\\.")} .*LANGFUSE_HOST`));
		expect(lineOf(result.stdout, "keys")).toBeUndefined();
		expect(result.ms).toBeLessThan(5000);
	});

	test("server without OTLP: one line says so and names LANGFUSE_TRANSPORT, exit 1", async () => {
		await receiver.setMode("legacy");
		const result = await cli(["doctor"]);
		expect(result.code).toBe(1);
		expect(failLines(result.stdout)).toHaveLength(1);
		expect(lineOf(result.stdout, "transport")).toMatch(/^✗ transport +server without OTLP: .*HTTP 404.*LANGFUSE_TRANSPORT=ingestion/);
		expect(lineOf(result.stdout, "keys")).toMatch(/^✓/);
		expect(lineOf(result.stdout, "test")).toBeUndefined();
	});

	test("server without OTLP and LANGFUSE_TRANSPORT=auto: works over the legacy API, exit 0", async () => {
		await receiver.setMode("legacy");
		const result = await cli(["doctor"], { LANGFUSE_TRANSPORT: "auto" });
		expect(result.code).toBe(0);
		expect(lineOf(result.stdout, "transport")).toMatch(/^✓ transport +legacy ingestion API/);
		expect(lineOf(result.stdout, "test")).toMatch(/^✓ test/);
		expect(receiver.events.some(event => event.type === "trace-create")).toBe(true);
	});

	test("missing keys: says which, exit 1", async () => {
		const result = await cli(["doctor"], { LANGFUSE_SECRET_KEY: undefined });
		expect(result.code).toBe(1);
		expect(lineOf(result.stdout, "config")).toMatch(/^✗ config .*LANGFUSE_SECRET_KEY not set/);
		expect(lineOf(result.stdout, "keys")).toMatch(/^✗ keys +set LANGFUSE_PUBLIC_KEY/);
		expect(lineOf(result.stdout, "host")).toMatch(/^✓/);
	});

	test("spool with waiting batches: a warning with the flush hint, still ready", async () => {
		mkdirSync(spoolDir, { recursive: true });
		writeFileSync(join(spoolDir, `${String(Date.now()).padStart(14, "0")}-1-abcdef01.jsonl`), "\n");
		const result = await cli(["doctor"]);
		expect(result.code).toBe(0);
		expect(lineOf(result.stdout, "spool")).toMatch(/^! spool .*1 batch file\(s\).*bun langfuse\.ts flush/);
	});
});

describe("flush", () => {
	/** Spool files the way they really come about: codex-notify ran while Langfuse was down. */
	async function spoolWhileDown(): Promise<void> {
		const sessions = join(root, "codex", "sessions", "2026", "11", "23");
		mkdirSync(sessions, { recursive: true });
		await receiver.setMode("down");
		for (const name of ["codex-one-tool.rollout.jsonl", "codex-two-turns.rollout.jsonl"]) {
			const text = readFileSync(join(FIXTURES, name), "utf8");
			const threadId = JSON.parse(text.split("\n", 1)[0]!).payload.id;
			writeFileSync(join(sessions, `rollout-2026-11-23T09-00-00-${threadId}.jsonl`), text);
			const result = await cli(["codex-notify", JSON.stringify({ type: "agent-turn-complete", "thread-id": threadId })]);
			expect(result.code).toBe(0);
		}
		await receiver.setMode("ok");
	}
	const spoolFiles = () => readdirSync(spoolDir).filter(name => /\.jsonl(\.\d+)?$/.test(name));
	/** Batch names without the `.<pid>` of a process that claimed them (and may have died holding them). */
	const batchNames = () => spoolFiles().map(name => name.replace(/\.\d+$/, "")).sort();

	test("sends what earlier runs left while Langfuse was down: every span exactly once, exit 0", async () => {
		await spoolWhileDown();
		const files = spoolFiles();
		expect(files.length).toBeGreaterThanOrEqual(2);
		// one batch was claimed by a process that died: flush takes it over
		const dead = Bun.spawn(["true"]);
		await dead.exited;
		renameSync(join(spoolDir, files[0]!), join(spoolDir, `${files[0]}.${dead.pid}`));

		const result = await cli(["flush"]);
		expect(result.code).toBe(0);
		const lines = result.stdout.trim().split("\n");
		expect(lines[0]).toMatch(new RegExp(`^flush: ${files.length} batch file\\(s\\), .* → ${receiver.url}`));
		const summary = lines.at(-1)!;
		expect(summary).toMatch(new RegExp(`^flush: sent ${receiver.spans.length} observation\\(s\\) from ${files.length} batch file\\(s\\); failed: 0 rejected, none unsent; left 0 batch file\\(s\\)$`));
		expect(receiver.spans.filter(span => !span.parentSpanId)).toHaveLength(3); // one-tool + two turns
		expect(Object.values(receiver.spanCountsById()).every(count => count === 1)).toBe(true);
		expect(spoolFiles()).toEqual([]);

		const again = await cli(["flush"]);
		expect(again.code).toBe(0);
		expect(again.stdout).toMatch(/^flush: nothing waiting/);
	});

	test("Langfuse still down: exit 1, the batches stay for later (released, not claimed)", async () => {
		await spoolWhileDown();
		const before = batchNames();
		await receiver.setMode("down");
		const result = await cli(["flush"]);
		await receiver.setMode("ok");
		expect(result.code).toBe(1);
		expect(result.stdout.trim().split("\n").at(-1)).toMatch(new RegExp(`left ${before.length} batch file\\(s\\) — network error`));
		expect(spoolFiles().sort()).toEqual(before); // released: no process suffix left
	});

	test("wrong key: exit 1, names the keys, sends nothing, keeps the batches", async () => {
		await spoolWhileDown();
		const before = spoolFiles().length;
		const result = await cli(["flush"], { LANGFUSE_SECRET_KEY: "sk-lf-wrong" });
		expect(result.code).toBe(1);
		expect(result.stdout).toContain("HTTP 401");
		expect(result.stdout).toContain("LANGFUSE_SECRET_KEY");
		expect(receiver.spans).toHaveLength(0);
		expect(spoolFiles()).toHaveLength(before);
	});

	test("a batch a running agent holds is left to it", async () => {
		mkdirSync(spoolDir, { recursive: true });
		writeFileSync(join(spoolDir, `${String(Date.now()).padStart(14, "0")}-1-abcdef02.jsonl.${process.pid}`), "\n");
		const result = await cli(["flush"]);
		expect(result.code).toBe(0);
		expect(result.stdout).toContain("left 0 batch file(s) (+1 held by running agents");
	});

	test("batches of another Langfuse project are named, never sent with these keys (issue 10.1)", async () => {
		await spoolWhileDown();
		const mine = spoolFiles();
		const other = `${String(Date.now()).padStart(14, "0")}-1-abcdef03.0123456789ab.jsonl`;
		const header = JSON.stringify({ v: 2, wire: "otel", mode: "full", host: "https://eu.example.test", publicKey: "pk-lf-other-project-1234" });
		writeFileSync(join(spoolDir, other), `${header}\n{"traceId":"00000000000000000000000000000001","spanId":"0000000000000001","name":"other"}\n`);
		const result = await cli(["flush"]);
		expect(result.code).toBe(0);
		expect(result.stdout).toMatch(new RegExp(`^flush: ${mine.length} batch file\\(s\\)`));
		expect(result.stdout).toContain("1 batch file(s) belong to other Langfuse projects");
		expect(result.stdout).toContain("https://eu.example.test");
		expect(result.stdout).not.toContain("pk-lf-other-project-1234");
		expect(receiver.spans.filter(span => span.name === "other")).toEqual([]);
		expect(spoolFiles()).toEqual([other]);
	});

	test("nothing in the spool: exit 0", async () => {
		const result = await cli(["flush"]);
		expect(result.code).toBe(0);
		expect(result.stdout).toMatch(/^flush: nothing waiting/);
	});
});

describe("codex-config, help", () => {
	test("codex-config prints the notify line with absolute paths and a ready [otel] block", async () => {
		const result = await cli(["codex-config"]);
		expect(result.code).toBe(0);
		const lines = result.stdout.split("\n");
		const notify = lines.find(line => line.startsWith("notify = "))!;
		expect(JSON.parse(notify.slice("notify = ".length))).toEqual([BUN, LF, "codex-notify"]);
		expect(lines).toContain("[otel]");
		const exporter = lines.find(line => line.startsWith("trace_exporter = "))!;
		expect(exporter).toContain(`endpoint = "${receiver.url}/api/public/otel/v1/traces"`);
		expect(exporter).toContain(`"Authorization" = "${receiver.authHeader(PK, SK)}"`);
		expect(result.stdout).toMatch(/does not expand \$\{VAR\}/);
		expect(result.stdout).toMatch(/no prompt, completion or tool output/);
		expect(result.stdout).toContain('"SubagentStop"');
		expect(result.stdout).not.toContain(SK); // only inside the base64 header
	});

	test("codex-config without keys: placeholders, exit 1", async () => {
		const result = await cli(["codex-config"], { LANGFUSE_PUBLIC_KEY: undefined });
		expect(result.code).toBe(1);
		expect(result.stdout).toContain("notify = [");
		expect(result.stdout).toContain("Basic <base64 of");
	});

	test("help exits 0, an unknown command prints usage and exits 2", async () => {
		const help = await cli(["help"]);
		expect(help.code).toBe(0);
		for (const command of ["doctor", "flush", "codex-config", "codex-notify", "codex-hook", "claude-config", "claude-hook"]) expect(help.stdout).toContain(command);
		expect((await cli([])).code).toBe(0);
		const unknown = await cli(["frobnicate"]);
		expect(unknown.code).toBe(2);
		expect(unknown.stderr).toContain("unknown command: frobnicate");
		expect(unknown.stderr).toContain("usage:");
	});
});

describe("claude-config, claude-* and codex-* hooks, doctor", () => {
	test("claude-config prints settings.json hooks with absolute paths and a timeout on every event", async () => {
		const result = await cli(["claude-config"]);
		expect(result.code).toBe(0);
		const { hooks } = JSON.parse(result.stdout);
		expect(Object.keys(hooks)).toEqual(["Stop", "StopFailure", "SubagentStop", "SessionEnd"]);
		for (const entries of Object.values(hooks) as { hooks: { type: string; command: string; timeout: number }[] }[][]) {
			expect(entries).toEqual([{ hooks: [{ type: "command", command: `'${BUN}' '${LF}' claude-hook`, timeout: 5 }] }]);
		}
		expect(result.stderr).toContain("LANGFUSE_PUBLIC_KEY");
		expect(result.stdout + result.stderr).not.toContain(SK);
	});

	test("an unknown claude-* or codex-* command (a hook of another version) exits 0 and prints nothing", async () => {
		for (const command of ["claude-hookz", "claude-stop", "codex-whatever"]) {
			const result = await cli([command, "{}"]);
			expect([result.code, result.stdout, result.stderr]).toEqual([0, "", ""]);
		}
	});

	test("doctor says whether Claude Code runs langfuse.ts", async () => {
		mkdirSync(join(root, ".claude"), { recursive: true });
		writeFileSync(join(root, ".claude", "settings.json"), JSON.stringify({ model: "opus" }));
		const before = await cli(["doctor"]);
		expect(lineOf(before.stdout, "claude")).toContain("does not run langfuse.ts yet");
		writeFileSync(join(root, ".claude", "settings.json"), (await cli(["claude-config"])).stdout);
		const after = await cli(["doctor"]);
		expect(lineOf(after.stdout, "claude")).toMatch(/^✓ claude +.*runs langfuse.ts after every prompt/);
		rmSync(join(root, ".claude"), { recursive: true });
		expect(lineOf((await cli(["doctor"])).stdout, "claude")).toBeUndefined();
	});
});
