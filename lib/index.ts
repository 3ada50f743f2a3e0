export * from './provider';
export * from './nixos-system';
export * from './nix-binary-cache';
export * from './nixos-ec2-machine';
export * from './machines';
export * from './state-backend';
