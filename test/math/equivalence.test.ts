import { expect } from 'chai';
import { gradeAnswer, isEquivalent, parseShape } from '../../src/math/index.js';

type Case = [string, string, boolean];

function check(cases: Case[]): void {
  for (const [a, b, want] of cases) {
    expect(isEquivalent(a, b), `${a} vs ${b}`).to.equal(want);
    expect(isEquivalent(b, a), `${b} vs ${a} (symmetry)`).to.equal(want);
  }
}

describe('answer equivalence', function () {
  this.timeout(60_000);

  it('numbers: relative tolerance 1e-4, exact for integers, scientific notation', () => {
    check([
      ['0.3333', '\\frac{1}{3}', true],
      ['0.333', '\\frac{1}{3}', false],
      ['1000', '999.99', false],
      ['1000', '1000.0', true],
      ['1e3', '1000', true],
      ['1.5\\times 10^{-3}', '0.0015', true],
      ['6.02 \\cdot 10^{23}', '6.02e23', true],
      ['123456', '123457', false],
      ['123456789012345678901', '123456789012345678902', false],
      ['0', '0.0', true],
      ['0', '0.00001', false],
      ['-7', '7', false],
      ['18', '\\$18.00', true],
    ]);
    expect(isEquivalent('3.1416', '3.14159', { relTol: 1e-4 })).to.equal(true);
    expect(isEquivalent('3.1416', '3.14159', { relTol: 1e-7 })).to.equal(false);
  });

  it('fractions: \\frac, a/b, signs, mixed numbers', () => {
    check([
      ['\\frac{3}{4}', '3/4', true],
      ['-\\frac{3}{4}', '\\frac{-3}{4}', true],
      ['\\frac{6}{8}', '0.75', true],
      ['2\\frac{1}{2}', '\\frac{5}{2}', true],
      ['2 1/2', '2.5', true],
      ['\\frac{3}{4}', '\\frac{4}{3}', false],
    ]);
  });

  it('percentages match their face value or value/100, never 0.5 against 50', () => {
    check([
      ['50\\%', '50', true],
      ['50%', '0.5', true],
      ['25\\%', '\\frac{1}{4}', true],
      ['0.5', '50', false],
      ['50\\%', '5', false],
    ]);
  });

  it('radicals and pi, numerically and symbolically', () => {
    check([
      ['\\sqrt{8}', '2\\sqrt{2}', true],
      ['\\frac{\\sqrt{3}}{3}', '\\frac{1}{\\sqrt{3}}', true],
      ['2\\pi', '6.2832', true],
      ['\\pi', '3.14', false],
      ['\\sqrt{2}', '\\sqrt{3}', false],
      ['e^{i\\pi}', '-1', true],
      ['\\frac{4-6i}{13}', '\\frac{4}{13}-\\frac{6}{13}i', true],
    ]);
  });

  it('tuples keep order; intervals keep bracket kinds (infinite ends are open)', () => {
    check([
      ['(1,2)', '\\left( 1, 2 \\right)', true],
      ['(1,2)', '(2,1)', false],
      ['(1,2,3)', '(1,2)', false],
      ['[1,2)', '[1,2)', true],
      ['[1,2)', '(1,2]', false],
      ['[1,2]', '(1,2)', false],
      ['(-\\infty, 3]', '[-\\infty,3]', true],
      ['(\\frac{1}{2}, 3)', '(0.5, 3)', true],
      ['(1, 2)', '1, 2', true],
    ]);
  });

  it('one-variable inequalities and set-builder sets are the intervals they describe', () => {
    check([
      ['x<3', '(-\\infty,3)', true],
      ['x \\geq 2', '[2,+\\infty)', true],
      ['x\\le 5', '(-\\infty,5)', false],
      ['-2\\le x<1', '[-2,1)', true],
      ['\\{x|-2\\leq x < 1\\}', '[-2,1)', true],
      ['\\{x \\mid x > 0\\}', '(0, \\infty)', true],
    ]);
  });

  it('sets and answer lists ignore order; unions of intervals too', () => {
    check([
      ['\\{1,2,3\\}', '\\{3,1,2\\}', true],
      ['\\{1,2\\}', '\\{1,2,3\\}', false],
      ['\\{1,2\\}', '(1,2)', false],
      ['1, 2', '2, 1', true],
      ['x=1, x=2', '2, 1', true],
      ['2 \\text{ or } 3', '3, 2', true],
      ['1, 1, 2', '1, 2', false],
      ['\\pm 3', '3, -3', true],
      ['1\\pm\\sqrt{2}', '1+\\sqrt{2}, 1-\\sqrt{2}', true],
      ['(0,1)\\cup(2,3)', '(2,3)\\cup(0,1)', true],
      ['(0,1)\\cup(2,3)', '(0,1]\\cup(2,3)', false],
      ['\\mathbb{R}', '(-\\infty,\\infty)', true],
      ['\\{5\\}', '5', true],
    ]);
  });

  it('equations: same sides, swapped sides, or proportional lhs - rhs', () => {
    check([
      ['x^2+y^2=1', 'y^2+x^2=1', true],
      ['2x+2y=2', 'x+y=1', true],
      ['3x+4y-5z=0', '-3x-4y+5z=0', true],
      ['x+y=1', 'x-y=1', false],
      ['y=2x+1', '2x+1', true],
    ]);
  });

  it('symbolic equality through compute-engine', () => {
    check([
      ['\\frac{x+1}{2}', '0.5x+0.5', true],
      ['(x+1)^2', 'x^2+2x+1', true],
      ['x^2-1', '(x-1)(x+1)', true],
      ['10-4 n', '-4n+10', true],
      ['\\sin^2 x + \\cos^2 x', '1', true],
      ['x+1', 'x+2', false],
      ['x+C', 'x', false],
      ['x', 'y', false],
      ['(t-\\frac{1}{2}\\sin 2t)u(t)', '(t+\\frac{1}{2}\\sin 2t)u(t)', false],
    ]);
  });

  it('matrices compare cell by cell, whatever their delimiters', () => {
    check([
      ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}', true],
      ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}', true],
      ['\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}', '\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}', false],
    ]);
  });

  it('text answers compare as words, case-insensitively; empty answers never match', () => {
    check([
      ['Yes', 'yes', true],
      ['\\text{No}', 'yes', false],
      ['\\text{Monday}', 'monday', true],
      ['', '5', false],
      ['', '', false],
    ]);
  });

  it('parses answer shapes', () => {
    expect(parseShape('[1,2)')).to.deep.include({ kind: 'bracketed', open: '[', close: ')' });
    expect(parseShape('\\{1,2\\}')).to.deep.include({ kind: 'set', braced: true });
    expect(parseShape('1,2')).to.deep.include({ kind: 'set', braced: false });
    expect(parseShape('(0,1)\\cup(2,3)').kind).to.equal('union');
    expect(parseShape('3x+4y=5').kind).to.equal('equation');
    expect(parseShape('\\{x|x>0\\}')).to.deep.include({ kind: 'bracketed', open: '(', close: ')' });
    expect(parseShape('\\{x|x^2>\\sin x\\}').kind).to.equal('scalar');
  });

  describe('gradeAnswer', () => {
    it('extracts and compares', () => {
      expect(gradeAnswer('so $\\boxed{\\frac{1}{2}}$.', '0.5')).to.deep.equal({ extracted: '\\frac{1}{2}', correct: true });
      expect(gradeAnswer('The answer is 7.', '8')).to.deep.equal({ extracted: '7', correct: false });
      expect(gradeAnswer('no answer here', '8')).to.deep.equal({ extracted: null, correct: false });
    });
    it('grades letters when the gold is a single letter A-E, or with the choices option', () => {
      expect(gradeAnswer('The answer is (C) because', 'C')).to.deep.equal({ extracted: 'C', correct: true });
      expect(gradeAnswer('\\boxed{B}', '(C)')).to.deep.equal({ extracted: 'B', correct: false });
      expect(gradeAnswer('\\boxed{C}', '2', { choices: ['a', 'b', 'c', 'd'] })).to.deep.equal({ extracted: 'C', correct: true });
      expect(gradeAnswer('\\boxed{C}', 'C', { choices: false })).to.deep.equal({ extracted: 'C', correct: true });
      expect(gradeAnswer('\\boxed{2}', '2')).to.deep.equal({ extracted: '2', correct: true });
    });
  });
});
