#!/usr/bin/env node
import '../dist/bundle/berth.js';
