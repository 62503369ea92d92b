#!/usr/bin/env node
import { main } from '../clients/index.js';
process.exit(await main(process.argv.slice(2)));
