// The redactor, held to the corpora in test/corpus/: every secret goes, every ordinary file stays byte-identical.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import langfuse, { type Internals } from "../langfuse.ts";

const { makeRedactor } = (langfuse as unknown as { internals: Internals }).internals;

const CORPUS = join(import.meta.dir, "corpus");
const SECRETS_DIR = join(CORPUS, "secrets");
const ORDINARY_DIR = join(CORPUS, "ordinary");

const read = (dir: string, name: string) => readFileSync(join(dir, name), "utf8");
const expectedSecrets = read(SECRETS_DIR, "expected-secrets.txt").split("\n").filter(Boolean);
const secretFiles = readdirSync(SECRETS_DIR).filter(name => !name.startsWith("expected-"));
const ordinaryFiles = readdirSync(ORDINARY_DIR);

/** What the live environment would hold: two secrets in formats no rule knows, and plain values. */
const liveEnv = (() => {
	const env = read(SECRETS_DIR, ".env");
	const tool = read(SECRETS_DIR, "tool-output.txt");
	return {
		ACME_INTERNAL_TOKEN: /^ACME_INTERNAL_TOKEN=(.+)$/m.exec(env)![1],
		VAULT_UNSEAL_SECRET: /^VAULT_UNSEAL_SECRET=(.+)$/m.exec(tool)![1],
		HOME: "/root",
		EDITOR: "vim",
		SHELL: "/bin/bash",
		PWD: "/root/project",
		TOKENIZERS_PARALLELISM: "false",
		AUTH_MODE: "oauth2",
		GIT_AUTHOR_NAME: "Octo Cat",
		MAX_TOKENS: "4096",
	};
})();
const redact = makeRedactor({ env: liveEnv });

/** Every 12-character window of a secret (or the whole secret when shorter). */
function windows(secret: string): string[] {
	if (secret.length <= 12) return [secret];
	const out: string[] = [];
	for (let i = 0; i + 12 <= secret.length; i++) out.push(secret.slice(i, i + 12));
	return out;
}

describe("secrets corpus", () => {
	const redacted = new Map(secretFiles.map(name => [name, redact(read(SECRETS_DIR, name))]));
	const all = [...redacted.values()].join("\n\u0000\n");

	test("the corpus covers every expected secret", () => {
		const raw = secretFiles.map(name => read(SECRETS_DIR, name)).join("\n");
		const absent = expectedSecrets.filter(secret => !raw.includes(secret));
		expect(absent).toEqual([]);
		expect(expectedSecrets.length).toBeGreaterThan(100);
	});

	test("100% of expected secrets are gone, also as 12-char fragments", () => {
		const survivors: string[] = [];
		for (const secret of expectedSecrets) {
			const leaked = windows(secret).find(piece => all.includes(piece));
			if (leaked) survivors.push(`${secret.slice(0, 24)}… (fragment ${JSON.stringify(leaked)})`);
		}
		expect(survivors).toEqual([]);
	});

	test("context survives: variable names, schemes, hosts, users", () => {
		const context: Record<string, string[]> = {
			".env": ["LANGFUSE_PUBLIC_KEY=[REDACTED]", "LANGFUSE_SECRET_KEY=[REDACTED]", "OPENAI_API_KEY=[REDACTED]", "AWS_SECRET_ACCESS_KEY=[REDACTED]", "DB_PASSWORD=[REDACTED]", "postgres://app_user:[REDACTED]@db.internal:5432/support", "redis://:[REDACTED]@cache.internal:6379/0", "LANGFUSE_HOST=https://cloud.langfuse.com", "MAX_TOKENS=4096", "FEATURE_FLAGS=streaming,token-budget"],
			"config.yaml": ["mysql://support:[REDACTED]@mysql.staging.internal:3306/support", "amqps://worker:[REDACTED]@mq.staging.internal", "mongodb+srv://reporting:[REDACTED]@cluster0.ab1cd.mongodb.net", "passwd: [REDACTED]", "api_key: \"[REDACTED]\"", "api_key: '[REDACTED]'", "client_secret: [REDACTED]", "hooks.slack.com/services/[REDACTED]", "private_key: |", "[REDACTED PRIVATE KEY]", "passwordMinLength: 12", "secretName: db-creds", "tokenizer: cl100k_base", "max_tokens: 4096"],
			"settings.json": ['"password": "[REDACTED]"', '"secretKey": "[REDACTED]"', '"apikey": "[REDACTED]"', '"auth": "[REDACTED]"', '"privateKey": "[REDACTED PRIVATE KEY]\\n"', '"tokenizer": "o200k_base"', '"max_tokens": 8192', '"user": "app_user"', '"host": "db.internal"'],
			"shell_history.txt": ["export OPENAI_API_KEY=[REDACTED]", "Authorization: Bearer [REDACTED]", "Authorization: Basic [REDACTED]", "curl -u deploy:[REDACTED]", "--user admin:[REDACTED]", "https://octocat:[REDACTED]@github.com/acme/private-repo.git", "https://oauth2:[REDACTED]@gitlab.com", "--password=[REDACTED]", "--api-key=[REDACTED]", "--password [REDACTED]", "--token [REDACTED]", "x-api-key: [REDACTED]", "PRIVATE-TOKEN: [REDACTED]", 'echo "token: $GITHUB_TOKEN" && git push -u origin main', "--password-stdin"],
			"stacktrace.txt": ["postgresql+psycopg2://etl:[REDACTED]@warehouse.internal:5432/analytics", "Authorization: 'Bearer [REDACTED]'", "jdbc:mysql://report:[REDACTED]@mysql.internal", "password authentication failed for user \"etl\"", "(using password: YES)", "token=[REDACTED]", "'access_token': '[REDACTED]'"],
			"tool-output.txt": ["aws_access_key_id = [REDACTED]", "aws_secret_access_key = [REDACTED]", "aws_session_token=[REDACTED]", "HOME=/root", "EDITOR=vim", "PWD=/root/project", "SHELL=/bin/bash", "[REDACTED PRIVATE KEY]", "login ops@acme.example", "username = __token__", "//registry.npmjs.org/:_authToken=[REDACTED]", "@acme:registry=https://npm.pkg.github.com", "Authorization: Basic [REDACTED]", "Authorization: token [REDACTED]", "$ cat ~/.netrc", "machine api.heroku.com"],
		};
		const missing: string[] = [];
		for (const [name, needles] of Object.entries(context)) {
			for (const needle of needles) if (!redacted.get(name)!.includes(needle)) missing.push(`${name}: ${needle}`);
		}
		expect(missing).toEqual([]);
	});

	test("redaction is idempotent on every file", () => {
		for (const out of redacted.values()) expect(redact(out)).toBe(out);
	});
});

describe("ordinary corpus", () => {
	for (const name of ordinaryFiles) {
		test(`${name} comes out byte-identical`, () => {
			const input = read(ORDINARY_DIR, name);
			const output = redact(input);
			if (output !== input) {
				// show the first difference instead of two whole files
				let i = 0;
				while (i < input.length && input[i] === output[i]) i++;
				expect(output.slice(Math.max(0, i - 80), i + 80)).toBe(input.slice(Math.max(0, i - 80), i + 80));
			}
			expect(Object.is(output, input)).toBe(true);
		});
	}
});

describe("rules in context", () => {
	const r = makeRedactor({});
	const cases: Array<[string, string]> = [
		["Authorization: Bearer abc123def456ghi789jkl", "Authorization: Bearer [REDACTED]"],
		["OPENAI_API_KEY=sk-proj-Q2x9Lm4Rt7Wv1Zb8Nc5Kd3Hf6Jg0Ps2Ty4Ua7Ei9Oo1", "OPENAI_API_KEY=[REDACTED]"],
		["postgres://app:pa55w0rd-xyz@db:5432/x", "postgres://app:[REDACTED]@db:5432/x"],
		['{"password": "hunter2hunter2"}', '{"password": "[REDACTED]"}'],
		["mysqldump --password s3cr3t-Pw db", "mysqldump --password [REDACTED] db"],
		["curl -u user:Passw0rd! https://x.example", "curl -u user:[REDACTED] https://x.example"],
		["token sk-lf-6f1c2b3a-9d8e-4f70-a1b2-c3d4e5f60718 here", "token [REDACTED] here"],
		["key=pk-lf-6f1c2b3a-9d8e-4f70-a1b2-c3d4e5f60718", "key=[REDACTED]"],
		["use AKIAZ3FAKEQ7EXAMPLE2 now", "use [REDACTED] now"],
		["login: ghp_FAKEab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", "login: [REDACTED]"],
		["x glpat-FAKEab12Cd34Ef56Gh78 y", "x [REDACTED] y"],
		["slack xoxb-123456789012-1234567890123-FAKEab12Cd34Ef56Gh78Ij90", "slack [REDACTED]"],
		["pay sk_test_51FAKEab12Cd34Ef56Gh78Ij90Kl now", "pay [REDACTED] now"],
		["g AIzaSyFAKEab12Cd34Ef56Gh78Ij90Kl12Mn34Op5 g", "g [REDACTED] g"],
		["hf hf_FAKEabcdEfghIjklMnopQrstUvwxYzabcdEf hf", "hf [REDACTED] hf"],
		["n npm_FAKEab12Cd34Ef56Gh78Ij90Kl12Mn34Op56 n", "n [REDACTED] n"],
		["mail SG.FAKEab12Cd34Ef56Gh78Ij.FAKEab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv1 ok", "mail [REDACTED] ok"],
		["jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJGQUtFIn0.c2lnbmF0dXJlLWZha2UtZmFrZQ done", "jwt [REDACTED] done"],
		["-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n", "[REDACTED PRIVATE KEY]\n"],
		["git clone https://user:ghs_FAKEab12Cd34Ef56Gh78Ij90Kl12Mn34Op56@github.com/a/b", "git clone https://user:[REDACTED]@github.com/a/b"],
		["export PASSWORD='Tr0ub4dor&3'", "export PASSWORD='[REDACTED]'"],
		["client_secret: 'a-Very_long.client~secret'", "client_secret: '[REDACTED]'"],
		["https://hooks.slack.com/services/T0FAKE123/B0FAKE4567/FAKEab12Cd34Ef56Gh78Ij90", "https://hooks.slack.com/services/[REDACTED]"],
		["GET /api?access_token=FAKEab12Cd34Ef56&page=2", "GET /api?access_token=[REDACTED]&page=2"],
		['{\\"password\\": \\"in-a-json-string-9\\"}', '{\\"password\\": \\"[REDACTED]\\"}'],
		["password = os.environ['DB_PASSWORD']", "password = os.environ['DB_PASSWORD']"],
		["const token = await getToken(user);", "const token = await getToken(user);"],
		["if (token === expectedToken) return;", "if (token === expectedToken) return;"],
		["401 invalid token: expected 3 parts", "401 invalid token: expected 3 parts"],
		["DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@db/app", "DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@db/app"],
		["OPENAI_API_KEY=<your key here>", "OPENAI_API_KEY=<your key here>"],
		["CREATE USER app WITH PASSWORD 'Sq1-Passw0rd';", "CREATE USER app WITH PASSWORD '[REDACTED]';"],
		["ALTER USER 'bob'@'%' IDENTIFIED BY 'b0b-secret-99';", "ALTER USER 'bob'@'%' IDENTIFIED BY '[REDACTED]';"],
		["machine github.com login octo password 9xYz-Netrc-Pass\n", "machine github.com login octo password [REDACTED]\n"],
		["access token: ya29.a0FAKEab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", "access token: [REDACTED]"],
		["aws configure set aws_secret_access_key Ab1+Cd2/Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3a", "aws configure set aws_secret_access_key [REDACTED]"],
		["Authorization: Basic ZGVwbG95OkZha2VQYXNzMTIz", "Authorization: Basic [REDACTED]"],
		["headers.set('Authorization', 'Basic ZGVwbG95OkZha2VQYXNzMTIz')", "headers.set('Authorization', 'Basic [REDACTED]')"],
		["the password is stored in Vault; password reset emails expire after 1h", "the password is stored in Vault; password reset emails expire after 1h"],
		["Basic auth and Bearer tokens are both supported", "Basic auth and Bearer tokens are both supported"],
	];
	for (const [input, expected] of cases) {
		test(JSON.stringify(input).slice(0, 70), () => {
			expect(r(input)).toBe(expected);
			expect(r(expected)).toBe(expected);
		});
	}
});

describe("live environment", () => {
	const value = "Zq8xW2vLp0Rt5Yb7Nc3Md9Kf"; // 24 chars, no known vendor shape
	const r = makeRedactor({ env: { MY_SERVICE_TOKEN: value, HOME: "/root", EDITOR: "vim", SHELL: "/bin/bash", NODE_ENV: "production" } });

	test("a random value under MY_SERVICE_TOKEN vanishes wherever it appears", () => {
		const out = r(`connected with ${value}; retry url=https://svc.example/cb?x=${value}#${value}`);
		expect(out).not.toContain(value);
		expect(out).toBe("connected with [REDACTED]; retry url=https://svc.example/cb?x=[REDACTED]#[REDACTED]");
	});

	test("HOME=/root and EDITOR=vim stay", () => {
		const text = "HOME=/root EDITOR=vim SHELL=/bin/bash cd /root && vim notes.txt";
		expect(r(text)).toBe(text);
	});

	test("obviously plain values under secret-looking names are not used", () => {
		const plain = makeRedactor({ env: { TOKENIZERS_PARALLELISM: "false", API_KEY_PATH: "/etc/acme/key", AUTH_TIMEOUT: "30000000", GH_TOKEN: "short" } });
		const text = "false /etc/acme/key 30000000 short";
		expect(plain(text)).toBe(text);
	});

	test("values with regex characters, all-lower-case values, and their JSON / URL forms", () => {
		const odd = "p@ss.w(rd)+[x]^$|{2}\\end";
		const lower = "abcdefghijklmnop";
		const r2 = makeRedactor({ env: { DB_PASSWORD: odd, ACME_SECRET: lower } });
		expect(r2(`a ${odd} b ${lower} c`)).toBe("a [REDACTED] b [REDACTED] c");
		expect(r2(JSON.stringify({ v: odd }))).toBe('{"v":"[REDACTED]"}');
		expect(r2(`https://x.example/?p=${encodeURIComponent(odd)}&q=1`)).toBe("https://x.example/?p=[REDACTED]&q=1");
	});

	test("many env values stay fast and all match", () => {
		const env: Record<string, string> = {};
		for (let i = 0; i < 200; i++) env[`SVC_${i}_TOKEN`] = `tok${i}-${(i * 7919).toString(36)}-${"x".repeat(i % 5)}abcdefgh`;
		const many = makeRedactor({ env });
		const text = Object.values(env).join(" | ");
		expect(many(text).replaceAll("[REDACTED]", "")).toBe(" | ".repeat(199));
	});
});

describe("custom patterns", () => {
	test("each match is replaced; an invalid pattern is reported once and skipped", () => {
		const reports: Array<[string, string]> = [];
		const r = makeRedactor({
			extraPatterns: ["ACME-[0-9]{6}", "(unclosed", "(?i)internal-\\w+"],
			onInvalidPattern: (pattern: string, error: string) => reports.push([pattern, error]),
		});
		expect(reports.length).toBe(1);
		expect(reports[0][0]).toBe("(unclosed");
		expect(reports[0][1].length).toBeGreaterThan(0);
		expect(r("ticket ACME-123456 on INTERNAL-host")).toBe("ticket [REDACTED] on [REDACTED]");
		expect(r("ticket ACME-12345")).toBe("ticket ACME-12345");
		r("again (unclosed");
		expect(reports.length).toBe(1);
	});

	test("a pattern that matches the empty string changes nothing", () => {
		const r = makeRedactor({ extraPatterns: ["x*"] });
		const text = "plain words without that letter";
		expect(r(text)).toBe(text);
		expect(r("a xxx b")).toBe("a [REDACTED] b");
	});
});

describe("contract", () => {
	test("the same string comes back when nothing matched", () => {
		const text = "just a chat message about tokens, keys and passwords in general.".repeat(3);
		expect(Object.is(redact(text), text)).toBe(true);
		expect(redact("")).toBe("");
		expect(redact("short")).toBe("short");
	});

	test("never throws, whatever the input", () => {
		const weird = ["\ud800", "x".repeat(70000), "=".repeat(5000), "password=".repeat(3000), "-----BEGIN PRIVATE KEY-----", "data:image/png;base64,", ":".repeat(9999), "\\".repeat(999)];
		for (const text of weird) expect(() => redact(text)).not.toThrow();
		expect(() => (redact as (x: unknown) => unknown)(undefined)).not.toThrow();
	});

	test("images become a marker that says what and how big", () => {
		const png = `iVBORw0KGgo${"A".repeat(16789)}`;
		const out = redact(`look: ![shot](data:image/png;base64,${png}) and {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/${"B".repeat(4000)}"}}`);
		expect(out).toBe('look: ![shot]([image image/png 12.3 KB base64 omitted]) and {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"[image image/jpeg 2.9 KB base64 omitted]"}}');
		expect(redact(out)).toBe(out);
	});

	test("idempotent on a shuffled mix of both corpora", () => {
		const lines = [...secretFiles.map(n => read(SECRETS_DIR, n)), ...ordinaryFiles.map(n => read(ORDINARY_DIR, n))].join("\n").split("\n");
		let seed = 7;
		const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
		for (let round = 0; round < 20; round++) {
			const mix = Array.from({ length: 200 }, () => lines[Math.floor(rand() * lines.length)]).join(rand() < 0.5 ? "\n" : " ");
			const once = redact(mix);
			expect(redact(once)).toBe(once);
			const asJson = JSON.stringify({ content: mix });
			const onceJson = redact(asJson);
			expect(redact(onceJson)).toBe(onceJson);
		}
	});

	test("secrets inside JSON-encoded payloads are caught too", () => {
		const secretsText = secretFiles.map(n => read(SECRETS_DIR, n)).join("\n");
		const out = redact(JSON.stringify({ messages: [{ role: "tool", content: secretsText }] }));
		const survivors = expectedSecrets.filter(secret => windows(JSON.stringify(secret).slice(1, -1)).some(piece => out.includes(piece)));
		expect(survivors).toEqual([]);
	});

	test("adversarial 64 KB inputs stay roughly linear (< 100 ms each)", () => {
		const n = 64000;
		const inputs = ["sk-".repeat(n / 3), "token=".repeat(n / 6), "key=".repeat(n / 4), `machine ${"\\n".repeat(n / 2)}`, "eyJa".repeat(n / 4), "-a".repeat(n / 2), "://a@".repeat(n / 5), "-----BEGIN RSA PRIVATE KEY-----".repeat(n / 31), `data:image/png;base64,${"A".repeat(n)}`];
		for (const input of inputs) {
			const t0 = performance.now();
			redact(input);
			expect(performance.now() - t0).toBeLessThan(100);
		}
	});

	test("a 64 KB string takes well under 50 ms", () => {
		const base = ordinaryFiles.map(n => read(ORDINARY_DIR, n)).join("\n") + read(SECRETS_DIR, "tool-output.txt");
		const text = base.repeat(Math.ceil(64000 / base.length)).slice(0, 64000);
		redact(text);
		const t0 = performance.now();
		redact(text);
		expect(performance.now() - t0).toBeLessThan(50);
	});
});
