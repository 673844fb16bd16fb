export * from './snapshot-layout.ts';
export * from './snapshot-record.ts';
export * from './cluster-scope.ts';
export * from './kv-records.ts';
export * from './cluster-config.ts';
