import { expect } from 'chai';
import {
  alternativesToList,
  canonicalDecimals,
  canonicalFractions,
  canonicalPercent,
  markMixedNumbers,
  normalizeAnswer,
  removeDegrees,
  removeDollars,
  removeSizing,
  removeSpaces,
  removeSpacing,
  removeThousandsSeparators,
  removeTrailingPeriod,
  removeUnits,
  stripBoxedWrapper,
  stripMathDelimiters,
  stripVariablePrefix,
  unicodeToLatex,
  unwrapTextCommands,
} from '../../src/math/normalize.js';

describe('answer normalisation rules', () => {
  it('strips math delimiters and a boxed wrapper around the whole answer', () => {
    expect(stripMathDelimiters('$$\\frac12$$')).to.equal('\\frac12');
    expect(stripMathDelimiters('\\(x\\)')).to.equal('x');
    expect(stripMathDelimiters('$\\$5$')).to.equal('\\$5');
    expect(stripBoxedWrapper('\\boxed{\\boxed{3}}')).to.equal('3');
    expect(stripBoxedWrapper('\\boxed{3} + 1')).to.equal('\\boxed{3} + 1');
  });

  it('removes \\left / \\right, sizing and \\displaystyle', () => {
    expect(removeSizing('\\left( 1, 2 \\right)')).to.equal('( 1, 2 )');
    expect(removeSizing('\\left\\{1\\right.')).to.equal('\\{1');
    expect(removeSizing('\\bigl[x\\bigr]')).to.equal('[x]');
    expect(removeSizing('\\displaystyle\\frac{1}{2}')).to.equal('\\frac{1}{2}');
  });

  it('removes spacing commands \\! \\, \\; \\quad and ~', () => {
    expect(removeSpaces(removeSpacing('3\\!\\,000'))).to.equal('3000');
    expect(removeSpaces(removeSpacing('1\\quad 2~3'))).to.equal('123');
  });

  it('rewrites \\dfrac and \\tfrac as \\frac, and brace-less \\frac12 and \\sqrt2', () => {
    expect(canonicalFractions('\\dfrac{3}{4}+\\tfrac{1}{2}')).to.equal('\\frac{3}{4}+\\frac{1}{2}');
    expect(canonicalFractions('\\frac12')).to.equal('\\frac{1}{2}');
    expect(canonicalFractions('\\frac1{x}')).to.equal('\\frac{1}{x}');
    expect(canonicalFractions('\\sqrt2')).to.equal('\\sqrt{2}');
  });

  it('unwraps \\text, \\textbf, \\mathrm and friends, and keeps \\operatorname as a command', () => {
    expect(unwrapTextCommands('\\text{(A)}')).to.equal('(A)');
    expect(unwrapTextCommands('\\textbf{\\mathrm{5}}')).to.equal('5');
    expect(unwrapTextCommands('\\operatorname{lcm}(2,3)')).to.equal('\\lcm (2,3)');
  });

  it('removes degree marks', () => {
    for (const s of ['90^\\circ', '90^{\\circ}', '90\u00b0', '90\\degree']) expect(removeDegrees(s)).to.equal('90');
  });

  it('removes units after a numeric answer, but not variables', () => {
    expect(removeUnits('5 \\text{ cm}')).to.equal('5');
    expect(removeUnits('10\\mathrm{~m}')).to.equal('10');
    expect(removeUnits('4 \\text{cm}^2')).to.equal('4');
    expect(removeUnits('12 dollars')).to.equal('12');
    expect(removeUnits('2\\sqrt{3} cm')).to.equal('2\\sqrt{3}');
    expect(removeUnits('60 km/h')).to.equal('60');
    expect(removeUnits('5 m')).to.equal('5');
    expect(removeUnits('10-4 n')).to.equal('10-4 n');
    expect(removeUnits('5m')).to.equal('5m');
    expect(removeUnits('\\text{yes}')).to.equal('\\text{yes}');
  });

  it('removes dollar signs and keeps percent marks as %', () => {
    expect(removeDollars('\\$18.50')).to.equal('18.50');
    expect(canonicalPercent('50 \\%')).to.equal('50%');
  });

  it('removes thousands separators only from a whole grouped number (tuples stay)', () => {
    expect(removeThousandsSeparators('1,000')).to.equal('1000');
    expect(removeThousandsSeparators('-1,234,567.5')).to.equal('-1234567.5');
    expect(removeThousandsSeparators('1{,}000')).to.equal('1000');
    expect(removeThousandsSeparators('1 000 000')).to.equal('1000000');
    expect(removeThousandsSeparators('(1,2)')).to.equal('(1,2)');
    expect(removeThousandsSeparators('1,20')).to.equal('1,20');
  });

  it('drops trailing zeros and completes leading decimal points', () => {
    expect(canonicalDecimals('2.50')).to.equal('2.5');
    expect(canonicalDecimals('3.0')).to.equal('3');
    expect(canonicalDecimals('.5')).to.equal('0.5');
    expect(canonicalDecimals('(1.10, 20)')).to.equal('(1.1, 20)');
    expect(canonicalDecimals('100')).to.equal('100');
  });

  it('strips x= / y = / f(x) = / \\theta = / x \\in prefixes, but keeps equations', () => {
    expect(stripVariablePrefix('x = 5')).to.equal('5');
    expect(stripVariablePrefix('y=2x+1')).to.equal('2x+1');
    expect(stripVariablePrefix('a_1 = 3')).to.equal('3');
    expect(stripVariablePrefix('f(x) = x^2')).to.equal('x^2');
    expect(stripVariablePrefix('\\theta = 30')).to.equal('30');
    expect(stripVariablePrefix('x \\in [1,2]')).to.equal('[1,2]');
    expect(stripVariablePrefix('x+y=1')).to.equal('x+y=1');
    expect(stripVariablePrefix('x=y=1')).to.equal('x=y=1');
  });

  it('removes spaces except between a command and a letter; drops a trailing period', () => {
    expect(removeSpaces('2 x + 3')).to.equal('2x+3');
    expect(removeSpaces('\\sin x + \\pi r')).to.equal('\\sin x+\\pi r');
    expect(removeTrailingPeriod('5.')).to.equal('5');
    expect(removeTrailingPeriod('3.5')).to.equal('3.5');
  });

  it('turns "or"/"and" alternatives into a list and marks mixed numbers', () => {
    expect(alternativesToList('2 \\text{ or } 3')).to.equal('2,3');
    expect(alternativesToList('2 and 3')).to.equal('2,3');
    expect(markMixedNumbers('2 1/2')).to.equal('2\\frac{1}{2}');
  });

  it('maps unicode math to LaTeX', () => {
    expect(removeSpaces(unicodeToLatex('\u22125 \u00d7 \u03c0 \u2264 \u221e'))).to.equal('-5\\times\\pi\\le\\infty');
  });

  it('chains every rule, idempotently', () => {
    const cases: [string, string][] = [
      ['$\\left( 1, 2 \\right)$', '(1,2)'],
      ['\\boxed{\\dfrac{3}{4}}', '\\frac{3}{4}'],
      ['x = 1,000', '1000'],
      ['\\$2.50.', '2.5'],
      ['\\text{(A)}', '(A)'],
      ['\\theta = 30^\\circ', '30'],
      ['k=1, 2', '1,2'],
      ['50\\%', '50%'],
      ['\\frac{1}{2} \\text{ cup}', '\\frac{1}{2}'],
      ['\u22125', '-5'],
    ];
    for (const [raw, want] of cases) {
      expect(normalizeAnswer(raw), raw).to.equal(want);
      expect(normalizeAnswer(normalizeAnswer(raw)), `${raw} twice`).to.equal(want);
    }
  });
});
