import { App, TerraformStack } from 'cdktf';

/**
 * The example app. Its stacks are `local` (test hosts on this machine, the default) and
 * `aws`. They hold no resources yet: the `nixos` provider and the NixosSystem construct
 * come next, and until then the engine's own `cdktf-nixos deploy` does the main job.
 */
const app = new App();
new TerraformStack(app, 'local');
new TerraformStack(app, 'aws');
app.synth();
