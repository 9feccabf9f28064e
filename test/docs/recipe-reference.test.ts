import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { recipeReference, REFERENCE_PAGE } from '../../scripts/docs/recipe-reference.js';

describe('docs/recipe-reference.md', () => {
  const { markdown, undocumented } = recipeReference();

  it('is the page the recipe schema generates (regenerate: node --import tsx scripts/docs/recipe-reference.ts)', () => {
    expect(readFileSync(REFERENCE_PAGE, 'utf8')).to.equal(markdown);
  });

  it('gives every recipe key a meaning', () => {
    expect(undocumented, 'keys without a doc comment in src/recipes/schema.ts').to.deep.equal([]);
  });

  it('lists keys with their defaults and TRL names', () => {
    expect(markdown).to.match(/\| `train\.grad_accumulation` \| integer \(> 0\) \| `1` \| .* \| `gradient_accumulation_steps` \|/);
    expect(markdown).to.match(/\| `train\.metric` \| `first_error_f1` \\\| `step_auroc` \\\| `step_accuracy` \\\| `dev_loss` \| `"dev_loss"` \|/);
    expect(markdown).to.contain('### `labels.method: consensus`');
  });
});
