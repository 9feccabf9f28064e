import { expect } from 'chai';
import { extractAnswer, extractChoice, findBoxed, goldAnswerFrom, lastBoxed } from '../../src/math/index.js';

describe('answer extraction', () => {
  describe('boxed answers', () => {
    it('takes the last \\boxed{} and balances nested braces', () => {
      expect(extractAnswer('first \\boxed{1}, finally $\\boxed{\\frac{\\sqrt{3}}{2}}$.')).to.equal('\\frac{\\sqrt{3}}{2}');
      expect(lastBoxed('\\boxed{\\left\\{1, \\{2\\}\\right\\}}')).to.equal('\\left\\{1, \\{2\\}\\right\\}');
    });
    it('reads \\fbox{}, the brace-less \\boxed 5 and nested \\boxed{\\boxed{}}', () => {
      expect(extractAnswer('so \\fbox{7} it is')).to.equal('7');
      expect(extractAnswer('the result is $\\boxed 5$.')).to.equal('5');
      expect(extractAnswer('\\boxed{\\boxed{3}}')).to.equal('3');
    });
    it('skips an unclosed \\boxed{ and falls back to the other rules', () => {
      expect(findBoxed('\\boxed{1} and \\boxed{2')).to.deep.equal(['1']);
      expect(extractAnswer('The answer is 4. \\boxed{')).to.equal('4');
    });
    it('prefers the boxed answer over phrases and numbers', () => {
      expect(extractAnswer('The answer is 3.\n#### 4\n\\boxed{5}')).to.equal('5');
    });
  });

  describe('phrases and markers', () => {
    it('"the (final) answer is" up to the end of the sentence, keeping decimals and math spans', () => {
      expect(extractAnswer('The answer is 42.')).to.equal('42');
      expect(extractAnswer('the answer is 3.14.')).to.equal('3.14');
      expect(extractAnswer('Thus the final answer is $3.5$ meters.')).to.equal('3.5');
      expect(extractAnswer('The answer is: \\frac{3}{4}\nmore text')).to.equal('\\frac{3}{4}');
      expect(extractAnswer('Final Answer: The final answer is $\\frac{\\pi}{2}$. I hope it is correct.')).to.equal('\\frac{\\pi}{2}');
      expect(extractAnswer('The answer is $\\$18.50$.')).to.equal('\\$18.50');
    });
    it('"#### N" (GSM8K) and "A: N" / "Answer: N" lines', () => {
      expect(extractAnswer('steps\n#### 1,234')).to.equal('1,234');
      expect(extractAnswer('She makes $18.\nA: 18')).to.equal('18');
      expect(extractAnswer('Answer: $x=3$.')).to.equal('x=3');
    });
    it('falls back to the last number, ignoring calculator annotations', () => {
      expect(extractAnswer('I got 3 apples and 4.5 pears')).to.equal('4.5');
      expect(extractAnswer('so 1,250 + <<2*3=6>>6 more, we have -0.5 left')).to.equal('-0.5');
      expect(extractAnswer('total 12,500 dollars')).to.equal('12500');
      expect(extractAnswer('no numbers at all')).to.equal(null);
    });
  });

  describe('multiple choice', () => {
    it('reads letters from boxes, phrases, parentheses and a bare last line', () => {
      expect(extractChoice('so \\boxed{B}')).to.equal('B');
      expect(extractChoice('\\boxed{\\text{(C)}}')).to.equal('C');
      expect(extractChoice('Therefore the answer is (D) because...')).to.equal('D');
      expect(extractChoice('The correct option is E.')).to.equal('E');
      expect(extractChoice('Answer: A')).to.equal('A');
      expect(extractChoice('Comparing (A) and (C), only (C) holds')).to.equal('C');
      expect(extractChoice('After all that:\nB')).to.equal('B');
    });
    it('does not take the article "a" for a letter, nor letters past the options', () => {
      expect(extractChoice('the answer is a rate of change, see (B)')).to.equal('B');
      expect(extractChoice('the answer is (F)', ['w', 'x', 'y', 'z'])).to.equal(null);
    });
    it('maps a boxed option text to its letter when the options are given', () => {
      const options = ['increase the mortality rate', '42 m/s', 'none of these'];
      expect(extractChoice('so \\boxed{42 \\text{ m/s}}', options)).to.equal('B');
      expect(extractChoice('so \\boxed{none of these}', options)).to.equal('C');
    });
    it('extractAnswer switches to letters with the choices option', () => {
      expect(extractAnswer('The answer is (B) 42', { choices: true })).to.equal('B');
      expect(extractAnswer('The answer is (B) 42')).to.equal('(B) 42');
    });
  });

  describe('gold answers held in record fields', () => {
    it('reads "#### N", boxed solutions, numbers and answer lists', () => {
      expect(goldAnswerFrom('Janet sells 9 eggs.\n#### 18')).to.equal('18');
      expect(goldAnswerFrom('so $s = \\boxed{1.6} \\mathrm{~cm}$')).to.equal('1.6');
      expect(goldAnswerFrom(2)).to.equal('2');
      expect(goldAnswerFrom(['$1$', '$3$'])).to.equal('$1$, $3$');
      expect(goldAnswerFrom('  ')).to.equal(null);
      expect(goldAnswerFrom({ a: 1 })).to.equal(null);
    });
  });
});
