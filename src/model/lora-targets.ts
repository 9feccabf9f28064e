/**
 * The projections LoRA can adapt, by PEFT's target_modules names (kept free of TensorFlow.js so
 * the recipe schema can list them).
 */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];
