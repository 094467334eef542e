/** safetensors dtype names, their element sizes and the inferzip dtype each maps to. */
import type { DType } from '../tensor.js';

export type SafetensorsDType =
  'BOOL' | 'U8' | 'I8' | 'F8_E4M3' | 'F8_E5M2' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'I64' | 'U64' | 'F64';

export const SAFETENSORS_ELEMENT_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

const TO_TENSOR: Partial<Record<SafetensorsDType, DType>> = {
  BF16: 'bf16',
  F16: 'f16',
  F32: 'f32',
  U8: 'u8',
  I8: 'i8',
  I32: 'i32',
  U32: 'u32',
  I64: 'i64',
};

const FROM_TENSOR: Record<DType, SafetensorsDType> = {
  bf16: 'BF16',
  f16: 'F16',
  f32: 'F32',
  u8: 'U8',
  i8: 'I8',
  i32: 'I32',
  u32: 'U32',
  i64: 'I64',
};

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(SAFETENSORS_ELEMENT_SIZE, value);
}

/** The inferzip dtype of a safetensors dtype, or undefined when inferzip has no typed array for it. */
export function tensorDType(dtype: SafetensorsDType): DType | undefined {
  return TO_TENSOR[dtype];
}

export function safetensorsDType(dtype: DType): SafetensorsDType {
  return FROM_TENSOR[dtype];
}
