// The UI's data layer: query keys (`keys`, `prefixes`) and the hooks pages read through.
export * from './keys';
export * from './hooks';
