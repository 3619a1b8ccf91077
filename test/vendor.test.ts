// `qgen vendor` and the recipes it renders: recipes are valid on every arch and the validator catches each kind of
// broken recipe; the torch package is deterministic, complete, its Python parses and carries the recipes unchanged;
// the C package's header is valid C and C++ and its CMake project builds a kernel. (Building and running the torch
// package needs PyTorch and a GPU: runtime/torch/tests/run.py on the device, results in bench/results/.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHS } from '../dsl/types.ts';
import { catalogFor } from '../dsl/catalog.ts';
import {
  GEMM_CHOICE,
  RECIPES,
  recipeKernels,
  recipeProblems,
  vendoredKernelNames,
  type LinearRecipe,
} from '../dsl/recipes.ts';
import { gencode, vendor } from '../emit/vendor.ts';
import { main } from '../cli/main.ts';
import { execFileSync } from 'node:child_process';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const TMP = mkdtempSync(path.join(os.tmpdir(), 'qgen-vendor-test-'));
const quartet2 = RECIPES.find((r) => r.name === 'quartet2')!;
const nvidia = RECIPES.find((r) => r.name === 'nvidia')!;

/** Every file under dir, relative, sorted. */
function listFiles(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => {
      const r = path.join(rel, e.name);
      return e.isDirectory() ? listFiles(dir, r) : [r];
    })
    .sort();
}

test("the recipes are valid on every arch, and every kernel they vendor is in that arch's catalog", () => {
  for (const arch of ARCHS) {
    assert.equal(recipeProblems(arch), [], arch);
    const catalog = new Set(catalogFor(arch).map((s) => s.name));
    for (const name of vendoredKernelNames(arch)) assert.ok(catalog.has(name), `${arch}: ${name}`);
    const rules = GEMM_CHOICE[arch];
    assert.is(rules[rules.length - 1].maxM, null, `${arch}: the last GEMM rule takes any m`);
  }
  assert.equal(
    RECIPES.map((r) => r.name),
    ['quartet2', 'nvidia', 'nvidia+4/6', 'tetrajet-v2'],
  );
  // 16x16 reuse names no kernel for W^T; requant and forward-bf16 do.
  assert.not.ok(recipeKernels(nvidia).some((k) => k.includes('wt')));
  assert.ok(recipeKernels(quartet2).includes('quartet2_wt_rq_mseden_rht128'));
});

test('recipeProblems names the recipe, the role and what is allowed for each kind of mistake', () => {
  const broken = (patch: (r: LinearRecipe) => LinearRecipe) =>
    recipeProblems('sm_90a', [patch(structuredClone(quartet2))]);
  const cases: [string, (r: LinearRecipe) => LinearRecipe, RegExp][] = [
    [
      'unknown kernel',
      (r) => ({ ...r, forward: { ...r.forward, x: 'no_such_kernel' } }),
      /forward\.x: no catalog kernel 'no_such_kernel'/,
    ],
    [
      'not a quantizer',
      (r) => ({ ...r, forward: { ...r.forward, w: 'hadamard_rht128' } }),
      /forward\.w: 'hadamard_rht128' is a hadamard kernel; allowed: a quantize kernel/,
    ],
    [
      'MXFP4 operand',
      (r) => ({ ...r, forward: { ...r.forward, x: 'mxfp4_x_rtn' } }),
      /must be NVFP4 with 128x4 scales/,
    ],
    [
      'transposed where row-major is needed',
      (r) => ({ ...r, dx: { ...r.dx, e: 'quartet2_et_mseden_rht128' } }),
      /dx\.e: 'quartet2_et_mseden_rht128' has transposedInput true; allowed: false/,
    ],
    [
      'bf16 kernel as requant',
      (r) => ({ ...r, dw: { ...r.dw, xt: { from: 'requant', kernel: 'quartet2_et_mseden_rht128' } } }),
      /dw\.xt: 'quartet2_et_mseden_rht128' has input 'bf16'; allowed: 'nvfp4'/,
    ],
    [
      'rotation in the forward',
      (r) => ({ ...r, forward: { ...r.forward, x: 'tetrajet2_e_sr_rht32' } }),
      /forward\.x: 'tetrajet2_e_sr_rht32' rotates/,
    ],
    [
      'mismatched Hadamard sizes',
      (r) => ({ ...r, dw: { ...r.dw, xt: { from: 'requant', kernel: 'tetrajet2_wt_rq_sr_rht32' } } }),
      /dw\.et rotates with Hadamard 128 but dw\.xt with 32/,
    ],
    [
      '16x16 reuse without 16x16 W',
      (r) => ({ ...r, dx: { e: 'nvidia_e_sr', wt: { from: 'transpose-16x16' } } }),
      /'transpose-16x16' needs a forward W with 16x16 blocks/,
    ],
    [
      '16x16 reuse for X^T',
      (r) => ({ ...r, dw: { ...r.dw, xt: { from: 'transpose-16x16' } } }),
      /'transpose-16x16' is only for W\^T/,
    ],
  ];
  for (const [what, patch, expected] of cases) {
    const problems = broken(patch);
    assert.ok(
      problems.some((p) => expected.test(p) && p.startsWith("recipe 'quartet2'")),
      `${what}: ${problems.join(' | ')}`,
    );
  }
  assert.ok(recipeProblems('sm_90a', [quartet2, quartet2]).some((p) => /duplicate name 'quartet2'/.test(p)));
});

test('vendor --target torch: same bytes twice, every kernel and runtime file present, no bytecode', async () => {
  const [a, b] = [path.join(TMP, 'torch-a'), path.join(TMP, 'torch-b')];
  const ra = await vendor({ target: 'torch', arch: 'sm_90a', out: a });
  await vendor({ target: 'torch', arch: 'sm_90a', out: b });
  const files = listFiles(a);
  assert.equal(listFiles(b), files);
  for (const f of files)
    assert.ok(readFileSync(path.join(a, f)).equals(readFileSync(path.join(b, f))), `differs: ${f}`);
  assert.equal(ra.kernels.slice().sort(), vendoredKernelNames('sm_90a').slice().sort());
  for (const k of ra.kernels) assert.ok(files.includes(`qgen_torch/csrc/kernels/${k}.cu`), k);
  for (const f of [
    'setup.py',
    'pyproject.toml',
    'README.md',
    'qgen_torch/__init__.py',
    'qgen_torch/linear.py',
    'qgen_torch/ops.py',
    'qgen_torch/_generated.py',
    'qgen_torch/csrc/qgen_torch_ops.cpp',
    'qgen_torch/csrc/qgen_torch_kernels.h',
    'tests/run.py',
  ]) {
    assert.ok(files.includes(f), f);
  }
  assert.not.ok(files.some((f) => f.includes('__pycache__') || f.endsWith('.pyc')));
  // The package names the tree it came from (commit + dirty, no date: hence the same bytes twice above).
  const prov = JSON.parse(readFileSync(path.join(a, 'PROVENANCE.json'), 'utf8'));
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  assert.equal(
    [prov.format, prov.commit, typeof prov.dirty, 'date' in prov],
    ['qgen-provenance/1', head, 'boolean', false],
  );
  // Every runtime file is copied verbatim.
  for (const f of listFiles(path.join(ROOT, 'runtime/torch')).filter(
    (f) => !f.includes('__pycache__') && !f.endsWith('.pyc'),
  )) {
    assert.ok(
      readFileSync(path.join(ROOT, 'runtime/torch', f)).equals(readFileSync(path.join(a, f))),
      `runtime file ${f}`,
    );
  }
  // The kernel header declares each quantizer's and GEMM's host entry point.
  const header = readFileSync(path.join(a, 'qgen_torch/csrc/qgen_torch_kernels.h'), 'utf8');
  for (const k of ra.kernels) assert.match(header, new RegExp(`qgen_${k}\\b`), k);
});

test('vendor --target torch: the Python parses, and _generated.py carries the recipes, sources and gencode', async () => {
  const dir = path.join(TMP, 'torch-py');
  const r = await vendor({ target: 'torch', arch: 'sm_100a', out: dir });
  const py = listFiles(dir)
    .filter((f) => f.endsWith('.py'))
    .map((f) => path.join(dir, f));
  assert.ok(py.length >= 8, `${py.length} Python files`);
  const compiled = await execa(
    'python3',
    ['-c', 'import ast, sys\nfor f in sys.argv[1:]: ast.parse(open(f).read(), f)', ...py],
    { reject: false },
  );
  assert.is(compiled.exitCode, 0, compiled.stderr);
  // _generated.py needs only json: import it alone and compare what it holds with the TypeScript data.
  const script =
    'import json, sys\nsys.path.insert(0, sys.argv[1])\nimport _generated as g\n' +
    'print(json.dumps({"arch": g.ARCH, "gencode": g.GENCODE, "sources": g.SOURCES, "kernels": sorted(g.KERNELS), ' +
    '"recipes": g.RECIPES, "gemm": g.GEMM_CHOICE}))';
  const run = await execa('python3', ['-c', script, path.join(dir, 'qgen_torch')], { reject: false });
  assert.is(run.exitCode, 0, run.stderr);
  const g = JSON.parse(run.stdout) as {
    arch: string;
    gencode: string;
    sources: string[];
    kernels: string[];
    recipes: Record<string, LinearRecipe>;
    gemm: unknown;
  };
  assert.is(g.arch, 'sm_100a');
  assert.is(g.gencode, 'arch=compute_100a,code=sm_100a');
  assert.is(gencode('sm_120a'), 'arch=compute_120a,code=sm_120a');
  assert.equal(g.kernels, r.kernels.slice().sort());
  assert.equal(g.sources.slice().sort(), r.kernels.map((k) => `${k}.cu`).sort());
  assert.equal(g.recipes, Object.fromEntries(RECIPES.map((x) => [x.name, x])));
  assert.equal(g.gemm, JSON.parse(JSON.stringify(GEMM_CHOICE.sm_100a)));
});

test('vendor --target c: the header compiles as C and C++, CMake builds the library, an app links against it and gets a clear error', async () => {
  const dir = path.join(TMP, 'c');
  const r = await vendor({ target: 'c', arch: 'sm_90a', out: dir });
  const cmake = readFileSync(path.join(dir, 'CMakeLists.txt'), 'utf8');
  for (const k of r.kernels) assert.match(cmake, new RegExp(`kernels/${k}\\.cu\\b`), k);
  assert.match(cmake, /CUDA_ARCHITECTURES 90a/);
  const cudaInclude = '/usr/local/cuda/include';
  for (const [compiler, ext] of [
    ['gcc', 'c'],
    ['g++', 'cpp'],
  ] as const) {
    const src = path.join(dir, `use_header.${ext}`);
    writeFileSync(src, '#include "qgen_kernels.h"\nint main(void) { return 0; }\n');
    const res = await execa(compiler, ['-Wall', '-Werror', '-fsyntax-only', `-I${dir}`, `-I${cudaInclude}`, src], {
      reject: false,
    });
    assert.is(res.exitCode, 0, `${compiler}: ${res.stderr}`);
  }
  // A host app next to the package: add_subdirectory + link, as the package README says; the library is built whole.
  // It calls one entry point with rows = 0, which every entry point refuses before touching the GPU (none here).
  const app = path.join(TMP, 'c-app');
  mkdirSync(app, { recursive: true });
  writeFileSync(
    path.join(app, 'CMakeLists.txt'),
    [
      'cmake_minimum_required(VERSION 3.24)',
      'project(qgen_app LANGUAGES CXX CUDA)',
      `add_subdirectory(${dir} qgen)`,
      'add_executable(app app.cpp)',
      'target_link_libraries(app PRIVATE qgen_kernels)',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(app, 'app.cpp'),
    [
      '#include <cstdio>',
      '#include "qgen_kernels.h"',
      'int main() {',
      '  qgen_dequantize_args a{};',
      '  a.rows = 0;',
      '  a.cols = 64;',
      '  qgen_status s = qgen_dequantize_nvfp4_bf16(&a, nullptr);',
      '  std::printf("%d %s\\n", s.code, s.message);',
      '  return s.code == QGEN_INVALID_ARGUMENT ? 0 : 1;',
      '}',
      '',
    ].join('\n'),
  );
  const build = path.join(TMP, 'c-build');
  const conf = await execa('cmake', ['-S', app, '-B', build, '-G', 'Ninja'], { reject: false });
  assert.is(conf.exitCode, 0, conf.stdout + conf.stderr);
  const made = await execa('ninja', ['-C', build], { reject: false });
  assert.is(made.exitCode, 0, made.stdout + made.stderr);
  assert.not.match(made.stdout, /warning/i);
  const ran = await execa(path.join(build, 'app'), { reject: false });
  assert.is(ran.exitCode, 0, ran.stdout + ran.stderr);
  assert.match(ran.stdout, /^1 .*rows/);
});

test('qgen vendor: bad --target and --arch are usage errors naming what is allowed; output lands where asked', async () => {
  const quiet = async (...args: string[]) => {
    const saved = { log: console.log, error: console.error, write: process.stderr.write };
    const err: string[] = [];
    console.log = () => {};
    console.error = (...a: unknown[]) => {
      err.push(a.join(' '));
    };
    process.stderr.write = ((c: unknown) => {
      err.push(String(c));
      return true;
    }) as typeof process.stderr.write;
    try {
      return { code: await main(args), stderr: err.join('\n') };
    } finally {
      Object.assign(console, { log: saved.log, error: saved.error });
      process.stderr.write = saved.write;
      process.exitCode = 0;
    }
  };
  const badTarget = await quiet('vendor', '--target', 'jax', '--arch', 'sm_90a', '--out', path.join(TMP, 'x'));
  assert.is.not(badTarget.code, 0);
  assert.match(badTarget.stderr, /--target.*"jax".*allowed: torch, c/);
  assert.not.ok(existsSync(path.join(TMP, 'x')), 'nothing written on a usage error');
  const badArch = await quiet('vendor', '--target', 'c', '--arch', 'sm_89', '--out', path.join(TMP, 'y'));
  assert.is.not(badArch.code, 0);
  assert.match(badArch.stderr, /sm_89/);
  assert.match(badArch.stderr, /sm_90a/);
  const ok = await quiet('vendor', '--target', 'c', '--arch', 'sm_120a', '--out', path.join(TMP, 'z'));
  assert.is(ok.code, 0, ok.stderr);
  assert.ok(existsSync(path.join(TMP, 'z/CMakeLists.txt')));
  assert.match(readFileSync(path.join(TMP, 'z/CMakeLists.txt'), 'utf8'), /CUDA_ARCHITECTURES 120a/);
});

test('torch setup.py: QGEN_NVCC_FLAGS that flush subnormals to zero are refused, other flags pass through', async () => {
  // setup.py imports torch; run only its flag check (the FTZ_FLAGS constant and user_nvcc_flags) under python3.
  const script = [
    'import ast, shlex, sys',
    'tree = ast.parse(open(sys.argv[1]).read())',
    'keep = [n for n in tree.body if (isinstance(n, ast.Assign) and n.targets[0].id == "FTZ_FLAGS")',
    '        or (isinstance(n, ast.FunctionDef) and n.name == "user_nvcc_flags")]',
    'ns = {"shlex": shlex, "sys": sys}',
    'exec(compile(ast.Module(body=keep, type_ignores=[]), "setup.py", "exec"), ns)',
    'print(ns["user_nvcc_flags"]("-Xptxas -v -ftz=false"))',
    'for text in ("--use_fast_math", "-O3 -ftz=true", "-ftz true"):',
    '    try:',
    '        ns["user_nvcc_flags"](text)',
    '        print("accepted", text)',
    '    except SystemExit as e:',
    '        print("refused", "QGEN_NVCC_FLAGS" in str(e))',
  ].join('\n');
  const run = await execa('python3', ['-c', script, path.join(ROOT, 'runtime/torch/setup.py')], { reject: false });
  assert.is(run.exitCode, 0, run.stderr);
  assert.equal(run.stdout.trim().split('\n'), [
    "['-Xptxas', '-v', '-ftz=false']",
    'refused True',
    'refused True',
    'refused True',
  ]);
});

test.run();
