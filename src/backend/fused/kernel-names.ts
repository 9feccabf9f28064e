/** The values of `train.kernels` (no tfjs import: the recipe schema reads this). */
export const KERNEL_CHOICES = ['fused', 'eager'] as const;
export type KernelChoice = (typeof KERNEL_CHOICES)[number];
