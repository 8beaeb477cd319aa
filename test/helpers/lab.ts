// Namespace integration fixture: the lab session shared with the benchmark.
export * from '../../src/lab/lab.js';
