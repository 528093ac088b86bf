//! Deserializes path parameters into the types a handler asks for:
//! a single value (`Path<u64>`), a tuple (`Path<(String, u32)>`), or a struct
//! whose fields are named after the parameters.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

/// Why a path parameter did not parse; becomes a 400 that names the parameter.
#[derive(Debug)]
pub(crate) struct PathError(pub(crate) String);

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

impl de::Error for PathError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Deserializes all parameters at once; `kind` names them in errors
/// ("path parameter", "query parameter").
pub(crate) struct ParamsDeserializer<'a>(
    pub(crate) &'a [(String, String)],
    pub(crate) &'static str,
);

/// Deserializes one parameter's value, parsing it as the requested type.
struct ValueDeserializer<'a> {
    name: &'a str,
    value: &'a str,
    kind: &'static str,
}

impl ValueDeserializer<'_> {
    fn parse<T: std::str::FromStr>(&self, ty: &str) -> Result<T, PathError> {
        self.value.parse().map_err(|_| {
            PathError(format!(
                "invalid {} `{}`: cannot parse {:?} as {ty}",
                self.kind, self.name, self.value
            ))
        })
    }
}

macro_rules! parse_value {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
            visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = PathError;

    parse_value! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
        deserialize_char => visit_char: char,
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_borrowed_str(self.value)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_borrowed_str(self.value)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_string(self.value.to_owned())
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_enum(self.value.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> Deserializer<'de> for ParamsDeserializer<'de> {
    type Error = PathError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_map(Params {
            params: self.0,
            at: 0,
            kind: self.1,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        visitor.visit_seq(Params {
            params: self.0,
            at: 0,
            kind: self.1,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        if len != self.0.len() {
            return Err(PathError(format!(
                "the route has {} path parameters but the handler asks for {len}",
                self.0.len()
            )));
        }
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct enum identifier ignored_any
    }
}

/// A path extractor for one scalar (`Path<u64>`): exactly one parameter.
pub(crate) fn single<'de, T: de::Deserialize<'de>>(
    params: &'de [(String, String)],
) -> Result<T, PathError> {
    T::deserialize(SingleOrMany(params))
}

/// Scalars read the only parameter; tuples, sequences and structs read all of them.
struct SingleOrMany<'a>(&'a [(String, String)]);

impl<'a> SingleOrMany<'a> {
    fn one(&self) -> Result<ValueDeserializer<'a>, PathError> {
        match self.0 {
            [(name, value)] => Ok(ValueDeserializer {
                name,
                value,
                kind: "path parameter",
            }),
            _ => Err(PathError(format!(
                "the route has {} path parameters; extract them as a tuple or a struct",
                self.0.len()
            ))),
        }
    }
}

macro_rules! forward_single {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
            self.one()?.$method(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for SingleOrMany<'de> {
    type Error = PathError;

    forward_single!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_option
    );

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        self.one()?.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        ParamsDeserializer(self.0, "path parameter").deserialize_seq(visitor)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        ParamsDeserializer(self.0, "path parameter").deserialize_tuple(len, visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, PathError> {
        ParamsDeserializer(self.0, "path parameter").deserialize_tuple_struct(name, len, visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, PathError> {
        ParamsDeserializer(self.0, "path parameter").deserialize_map(visitor)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, PathError> {
        ParamsDeserializer(self.0, "path parameter").deserialize_struct(name, fields, visitor)
    }

    serde::forward_to_deserialize_any! { bytes byte_buf unit unit_struct identifier ignored_any }
}

struct Params<'a> {
    params: &'a [(String, String)],
    at: usize,
    kind: &'static str,
}

impl<'de> MapAccess<'de> for Params<'de> {
    type Error = PathError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, PathError> {
        match self.params.get(self.at) {
            Some((name, _)) => seed
                .deserialize(name.as_str().into_deserializer())
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, PathError> {
        let (name, value) = &self.params[self.at];
        self.at += 1;
        seed.deserialize(ValueDeserializer {
            name,
            value,
            kind: self.kind,
        })
    }
}

impl<'de> SeqAccess<'de> for Params<'de> {
    type Error = PathError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, PathError> {
        match self.params.get(self.at) {
            Some((name, value)) => {
                self.at += 1;
                seed.deserialize(ValueDeserializer {
                    name,
                    value,
                    kind: self.kind,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn scalars_tuples_and_structs() {
        let one = params(&[("room_id", "42")]);
        assert_eq!(single::<u64>(&one).unwrap(), 42);
        assert_eq!(single::<String>(&one).unwrap(), "42");
        let two = params(&[("name", "lobby"), ("n", "-3")]);
        assert_eq!(
            single::<(String, i32)>(&two).unwrap(),
            ("lobby".to_owned(), -3)
        );
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct P {
            n: i32,
            name: String,
        }
        assert_eq!(
            single::<P>(&two).unwrap(),
            P {
                n: -3,
                name: "lobby".into()
            }
        );
        let flags = params(&[("on", "true"), ("ratio", "0.5")]);
        assert_eq!(single::<(bool, f64)>(&flags).unwrap(), (true, 0.5));
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = single::<u64>(&params(&[("room_id", "abc")])).unwrap_err();
        assert!(err.0.contains("room_id"), "{}", err.0);
        assert!(err.0.contains("u64"), "{}", err.0);
        let err = single::<u64>(&params(&[("a", "1"), ("b", "2")])).unwrap_err();
        assert!(err.0.contains("tuple"), "{}", err.0);
    }
}
