public enum KedgeConvertPlaceholder {}
