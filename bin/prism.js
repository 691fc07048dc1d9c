#!/usr/bin/env -S node --max-semi-space-size=8
// The V8 flags are those of src/runtime/node-flags.ts (why: see there).
// Node >= 22.18 runs the TypeScript sources directly (type stripping); no build step.
import '../src/cli/main.ts';
