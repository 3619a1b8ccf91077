// qgen's public API (package.json "exports"): what a user's spec file or sweep script imports from 'qgen'.
//   import { catalogFor, quantize, validateFile, type SpecFile } from 'qgen';
// Spec files may also import the types alone from 'qgen/dsl/types.ts'. Anything not exported here is internal and
// may change between versions. Run a sweep script with `npx tsx sweep.ts` (qgen is TypeScript, loaded by tsx).
export * from './dsl/types.ts';
export { CATALOG, ARCH_VARIANTS, ARCH_EXTRAS, catalogFor, catalogSpec } from './dsl/catalog.ts';
export {
  NVFP4_GROUP,
  MXFP4_GROUP,
  DEFAULT_ELEMENTWISE_TILING,
  quantize,
  hadamard,
  dequantize,
  amax,
  gemm,
} from './dsl/builders.ts';
export { E2M1_MAX, E4M3_MAX, CEILING_RTN, CEILING_EDEN } from './dsl/constants.ts';
export { RECIPES, type LinearRecipe } from './dsl/recipes.ts';
export { validate, validateFile, assertValid, SpecError } from './validate/validate.ts';
export { loadSpecFile } from './dsl/load.ts';
export { emitKernels, type Manifest, type ManifestKernel } from './emit/emit.ts';
