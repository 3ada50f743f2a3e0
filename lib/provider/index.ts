export * from './nixos-provider';
export * from './system-resource';
export * from './closure-data-source';
