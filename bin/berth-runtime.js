#!/usr/bin/env node
/* global require */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS, for the code cache (bin/package.json) */
require('./load-bundle.js')('berth-runtime');
