#!/usr/bin/env node
import('../dist/bundle/berthd.js');
